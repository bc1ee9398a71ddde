"""`POST /api/v1/outbound` with an Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the same key with
the same request replays the first answer; with another document or receiver it is a 422 problem naming the key,
and nothing new is queued. Keys belong to one token."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from accesspoint.gateway import Gateway
from accesspoint.store.models import ApiClient, ApiRole, Message, Participant
from tests.sending.harness import RECEIVER, SENDER, invoice
from tests.web.conftest import Org

OTHER_RECEIVER = "0007:5565475489"


@pytest.fixture
def sender(gateway: Gateway, acme: Org) -> Org:
    with gateway.read() as session:
        session.add(Participant(scheme=SENDER.scheme, value=SENDER.value, organisation_id=acme.id))
    return acme


@pytest.fixture
def document(vectors: Path) -> bytes:
    return invoice(vectors / "bis" / "base-example.xml")


def submit(client: FlaskClient, org: Org, body: bytes, key: str, query: str = "", token: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token or org.token}", "Idempotency-Key": key}
    return client.post(f"/api/v1/outbound{query}", data=body, content_type="application/xml", headers=headers)


def queued(gateway: Gateway) -> int:
    with gateway.read() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


def test_same_key_same_request_is_replayed(gateway: Gateway, client: FlaskClient, sender: Org,
                                           document: bytes) -> None:
    first = submit(client, sender, document, "invoice-4711")
    again = submit(client, sender, document, "invoice-4711")
    assert first.status_code == again.status_code == 202, first.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert queued(gateway) == 1


def test_same_key_another_document_is_422_and_queues_nothing(gateway: Gateway, client: FlaskClient, sender: Org,
                                                             document: bytes) -> None:
    first = submit(client, sender, document, "invoice-4711")
    assert first.status_code == 202
    other = document.replace(b"Snippet1", b"Snippet2")
    assert other != document
    refused = submit(client, sender, other, "invoice-4711")
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert problem["idempotency_key"] == "invoice-4711" and "'invoice-4711'" in problem["detail"]
    assert problem["field"] == "Idempotency-Key" and problem["message_id"] == first.get_json()["id"]
    # another receiver for the same document is another request too
    rerouted = submit(client, sender, document, "invoice-4711", query=f"?receiver={OTHER_RECEIVER}")
    assert rerouted.status_code == 422
    assert queued(gateway) == 1
    # the first request still replays, and a new key queues the second document
    assert submit(client, sender, document, "invoice-4711").headers["Idempotent-Replayed"] == "true"
    assert submit(client, sender, other, "invoice-4712").status_code == 202
    assert queued(gateway) == 2


def test_keys_belong_to_one_token(gateway: Gateway, client: FlaskClient, sender: Org, document: bytes) -> None:
    with gateway.read() as session:
        second, token = ApiClient.issue("second erp", ApiRole.NETWORK, sender.id)
        session.add(second)
    assert submit(client, sender, document, "k-1").status_code == 202
    other = submit(client, sender, document, "k-1", token=token)
    assert other.status_code == 202 and "Idempotent-Replayed" not in other.headers
    assert queued(gateway) == 2


def test_a_message_from_before_fingerprints_is_replayed(gateway: Gateway, client: FlaskClient, sender: Org,
                                                        document: bytes) -> None:
    first = submit(client, sender, document, "old-key")
    with gateway.read() as session:
        session.get(Message, first.get_json()["id"]).idempotency_fingerprint = None
    again = submit(client, sender, document.replace(b"Snippet1", b"Snippet2"), "old-key")
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert RECEIVER.uri == again.get_json()["receiver"]


@pytest.mark.parametrize("same", [True, False], ids=["same-document", "other-document"])
def test_concurrent_requests_with_one_key_queue_one_message(gateway: Gateway, client: FlaskClient, sender: Org,
                                                            document: bytes, same: bool) -> None:
    # the key is stored with the message in one transaction: the loser of the race waits for the winner's commit
    # (the unique constraint) and is answered from it, so no request sees the first one half done
    bodies = [document, document if same else document.replace(b"Snippet1", b"Snippet2")]
    start = threading.Barrier(len(bodies))
    answers: list[Any] = [None] * len(bodies)

    def send(n: int) -> None:
        own = client.application.test_client()
        start.wait()
        answers[n] = submit(own, sender, bodies[n], "race-1")

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == ([202, 202] if same else [202, 422])
    if same:
        assert answers[0].get_json()["id"] == answers[1].get_json()["id"]
        assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    assert queued(gateway) == 1
