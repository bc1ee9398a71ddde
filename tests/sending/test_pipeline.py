"""The sending pipeline over real HTTP, DNS and SMP on 127.0.0.1: submit through the API, send with the worker
task, and check the state, reason, receipt and what the receiving AP got."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from accesspoint.app import create_app
from accesspoint.flows.maintenance import sweep_blobs
from accesspoint.flows.sending import send_due
from accesspoint.store.models import Attempt, Event, Message, MessageState, WebhookDelivery, WebhookSubscription
from accesspoint.store.types import utcnow
from tests.sending.harness import RECEIVER, FakeAccessPoint, Network, invoice, network, serve_wsgi

CREDIT_NOTE = ("busdox-docid-qns", "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##"
                                   "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    with network(tmp_path) as built:
        yield built


@pytest.fixture
def api(net: Network) -> FlaskClient:
    return create_app(gateway=net.gateway).test_client()


@pytest.fixture
def document(vectors: Path) -> bytes:
    return invoice(vectors / "bis" / "base-example.xml")


def auth(net: Network, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {net.token}", **headers}


def submit(api: FlaskClient, net: Network, document: bytes, **headers: str) -> str:
    response = api.post("/api/v1/outbound", data=document, content_type="application/xml",
                        headers=auth(net, **headers))
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/outbound/{response.get_json()['id']}")
    return response.get_json()["id"]


def status(api: FlaskClient, net: Network, message_id: str) -> dict:
    response = api.get(f"/api/v1/outbound/{message_id}", headers=auth(net))
    assert response.status_code == 200
    return response.get_json()


def make_due(net: Network, message_id: str) -> None:
    """Skip the backoff wait: the message becomes due now."""
    with net.gateway.read() as session:
        session.get(Message, message_id).next_attempt_at = utcnow() - timedelta(seconds=1)


def events(net: Network, message_id: str) -> list[str]:
    with net.gateway.sessions() as session:
        return list(session.scalars(select(Event.type).where(Event.message_id == message_id)
                                    .order_by(Event.created_at)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sent_with_verified_receipt(api: FlaskClient, net: Network, document: bytes) -> None:
    net.register(RECEIVER)
    message_id = submit(api, net, document)
    assert status(api, net, message_id)["state"] == "queued"
    assert send_due(net.gateway) == 1
    body = status(api, net, message_id)
    assert body["state"] == "sent"
    assert body["receiving_ap"] == {"seat_id": "POP000002", "endpoint_url": net.as4_url}
    assert [a["outcome"] for a in body["attempts"]] == ["sent"]
    assert net.receiver_ap.received == [body["as4_message_id"]]
    assert b"<cbc:EndpointID schemeID=\"0007\">5560360793</cbc:EndpointID>" in net.receiver_ap.documents[0]
    receipt = api.get(f"/api/v1/outbound/{message_id}/receipt", headers=auth(net))
    assert receipt.status_code == 200 and receipt.mimetype == "application/xml"
    assert body["as4_message_id"].encode() in receipt.data and b"NonRepudiationInformation" in receipt.data
    assert events(net, message_id) == ["outbound.sent"]


def test_receiver_not_registered_fails_at_once(api: FlaskClient, net: Network, document: bytes) -> None:
    with net.gateway.read() as session:
        session.add(WebhookSubscription(organisation_id=net.organisation_id, url="http://127.0.0.1:9/hook",
                                        secret="whsec_" + "x" * 32, events=["outbound.failed"]))
    message_id = submit(api, net, document)
    send_due(net.gateway)
    body = status(api, net, message_id)
    assert body["state"] == "failed"
    assert body["reason"].startswith("0007:5560360793 is not registered in Peppol")
    assert body["hint"] and body["error_code"] == "participant-not-registered"
    assert body["receiving_ap"] is None and net.receiver_ap.received == []
    assert events(net, message_id) == ["outbound.failed"]
    with net.gateway.sessions() as session:  # the webhook of the organisation is due to hear about it
        delivery = session.scalars(select(WebhookDelivery).join(Event).where(Event.message_id == message_id)).one()
        assert delivery.state == "pending"


def test_document_type_not_supported_fails(api: FlaskClient, net: Network, document: bytes) -> None:
    net.register(RECEIVER, doctype=CREDIT_NOTE)
    message_id = submit(api, net, document)
    send_due(net.gateway)
    body = status(api, net, message_id)
    assert body["state"] == "failed"
    assert body["reason"].startswith("the receiver's SMP has no endpoint for Peppol BIS Billing 3.0 invoices")


def test_receiver_down_retries_with_the_same_message_id(api: FlaskClient, net: Network, document: bytes) -> None:
    port = free_port()
    net.register(RECEIVER, url=f"http://127.0.0.1:{port}/as4")
    message_id = submit(api, net, document)
    send_due(net.gateway)
    first = status(api, net, message_id)
    assert first["state"] == "retrying"
    assert first["attempts"][0]["error_code"] == "connection" and "cannot reach" in first["reason"]
    assert first["next_attempt_at"] is not None
    assert events(net, message_id) == ["outbound.retrying"]

    other = FakeAccessPoint(net.receiver_ap.key, net.receiver_ap.validator)
    with serve_wsgi(other, port):  # back on the port the SMP names
        make_due(net, message_id)
        send_due(net.gateway)
    body = status(api, net, message_id)
    assert body["state"] == "sent"
    assert [a["outcome"] for a in body["attempts"]] == ["transient", "sent"]
    # a resend after a transport failure keeps the AS4 MessageId (the receiver may hold the first copy)
    assert other.received == [first["as4_message_id"]] == [body["as4_message_id"]]


def test_resend_after_a_time_out_is_byte_identical(tmp_path: Path, vectors: Path) -> None:
    with network(tmp_path, response_timeout_seconds=1) as net:
        api = create_app(gateway=net.gateway).test_client()
        net.register(RECEIVER)
        net.receiver_ap.mode = "stall"
        message_id = submit(api, net, invoice(vectors / "bis" / "base-example.xml"))
        send_due(net.gateway)
        first = status(api, net, message_id)
        assert first["state"] == "retrying" and first["attempts"][0]["error_code"] == "timeout"
        net.receiver_ap.mode = "receipt"
        make_due(net, message_id)
        send_due(net.gateway)
        body = status(api, net, message_id)
        assert body["state"] == "sent"
        # the receiver got the same MessageId twice, in the very same bytes: it can tell a resend from a forgery
        assert net.receiver_ap.received == [first["as4_message_id"]] * 2
        assert net.receiver_ap.bodies[0] == net.receiver_ap.bodies[1]
        with net.gateway.sessions() as session:
            assert session.get(Message, message_id).wire_blob_key is None  # dropped once answered


def test_http_500_retries_then_sends_with_a_new_message_id(api: FlaskClient, net: Network, document: bytes) -> None:
    net.register(RECEIVER)
    net.receiver_ap.mode = "http500"
    message_id = submit(api, net, document)
    send_due(net.gateway)
    first = status(api, net, message_id)
    assert first["state"] == "retrying" and first["attempts"][0]["http_status"] == 500
    net.receiver_ap.mode = "receipt"
    make_due(net, message_id)
    send_due(net.gateway)
    body = status(api, net, message_id)
    assert body["state"] == "sent"
    # the receiver answered the first try, so it may have registered that MessageId: the next one is fresh
    assert body["as4_message_id"] != first["as4_message_id"]


def test_ebms_error_fails_and_retry_uses_a_new_message_id(api: FlaskClient, net: Network, document: bytes) -> None:
    net.register(RECEIVER)
    net.receiver_ap.mode = "not-serviced"
    message_id = submit(api, net, document)
    send_due(net.gateway)
    failed = status(api, net, message_id)
    assert failed["state"] == "failed"
    assert failed["reason"].startswith("the receiving access point rejected the message: EBMS:0004")
    assert "PEPPOL:NOT_SERVICED" in failed["reason"] and "registration" in failed["hint"]
    assert len(failed["attempts"]) == 1

    net.receiver_ap.mode = "receipt"
    retried = api.post(f"/api/v1/outbound/{message_id}/retry", headers=auth(net))
    assert retried.status_code == 202 and retried.get_json()["state"] == "queued"
    again = api.post(f"/api/v1/outbound/{message_id}/retry", headers=auth(net))
    assert again.status_code == 409
    send_due(net.gateway)
    body = status(api, net, message_id)
    assert body["state"] == "sent" and body["reason"] is None
    assert len(set(net.receiver_ap.received)) == 2
    assert events(net, message_id) == ["outbound.failed", "outbound.sent"]


def test_receipt_with_wrong_digest_fails(api: FlaskClient, net: Network, document: bytes) -> None:
    net.register(RECEIVER)
    net.receiver_ap.mode = "bad-digest"
    message_id = submit(api, net, document)
    send_due(net.gateway)
    body = status(api, net, message_id)
    assert body["state"] == "failed"
    assert body["error_code"] == "EBMS:0302"
    assert "DigestValue differs" in body["reason"]
    assert api.get(f"/api/v1/outbound/{message_id}/receipt", headers=auth(net)).status_code == 404


def test_deadline_turns_a_transient_failure_into_failed(api: FlaskClient, net: Network, document: bytes) -> None:
    net.register(RECEIVER, url=f"http://127.0.0.1:{free_port()}/as4")
    message_id = submit(api, net, document)
    with net.gateway.read() as session:
        session.get(Message, message_id).deadline_at = utcnow() + timedelta(milliseconds=100)
    send_due(net.gateway)
    body = status(api, net, message_id)
    assert body["state"] == "failed"
    assert body["reason"].startswith("gave up after 1 attempt(s) by the deadline")
    assert "retry" in body["hint"]


def test_a_message_whose_worker_died_is_resent_under_its_message_id(net: Network, api: FlaskClient,
                                                                     document: bytes) -> None:
    net.register(RECEIVER)
    message_id = submit(api, net, document)
    with net.gateway.read() as session:  # what a worker leaves behind when it dies after posting
        message = session.get(Message, message_id)
        message.state, message.locked_by = MessageState.SENDING, "dead-worker"
        message.locked_until = utcnow() - timedelta(seconds=1)
        message.as4_message_id = "d1b5c0de-0000-4000-8000-000000000001@dead.example"
        message.attempts = 1
        session.add(Attempt(message_id=message_id, number=1, endpoint_url=net.as4_url))
    assert send_due(net.gateway) == 1
    body = status(api, net, message_id)
    assert body["state"] == "sent"
    assert [(a["outcome"], a["error_code"]) for a in body["attempts"]] == [("transient", "interrupted"),
                                                                          ("sent", None)]
    assert net.receiver_ap.received == ["d1b5c0de-0000-4000-8000-000000000001@dead.example"]


def test_circuit_breaker_stops_calling_a_dead_endpoint(tmp_path: Path, vectors: Path) -> None:
    with network(tmp_path, circuit_breaker_failures=2, circuit_breaker_open_seconds=600) as net:
        api = create_app(gateway=net.gateway).test_client()
        net.register(RECEIVER, url=f"http://127.0.0.1:{free_port()}/as4")
        ids = [submit(api, net, invoice(vectors / "bis" / "base-example.xml")) for _ in range(3)]
        send_due(net.gateway)
        codes = [status(api, net, i)["attempts"][0]["error_code"] for i in ids]
        assert sorted(codes) == ["circuit-open", "connection", "connection"]
        opened = status(api, net, ids[codes.index("circuit-open")])
        assert opened["state"] == "retrying" and "circuit breaker" in opened["reason"]



def test_an_unexpected_error_releases_the_message_and_the_batch_goes_on(api: FlaskClient, net: Network,
                                                                          document: bytes,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    net.register(RECEIVER)
    broken, fine = submit(api, net, document), submit(api, net, document)
    discovery = net.gateway.discovery
    real = discovery.find_endpoint
    calls: list[int] = []

    def find_endpoint(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in the first attempt")
        return real(*args, **kwargs)

    monkeypatch.setattr(discovery, "find_endpoint", find_endpoint)
    assert send_due(net.gateway) == 2
    states = {status(api, net, m)["state"] for m in (broken, fine)}
    assert states == {"retrying", "sent"}
    with net.gateway.sessions() as session:
        assert all(session.get(Message, m).locked_by is None for m in (broken, fine))


def test_the_blob_sweep_keeps_the_stored_body_of_a_retrying_message(api: FlaskClient, net: Network,
                                                                    document: bytes) -> None:
    net.register(RECEIVER, url=f"http://127.0.0.1:{free_port()}/as4")
    message_id = submit(api, net, document)
    send_due(net.gateway)
    with net.gateway.sessions() as session:
        message = session.get(Message, message_id)
        keys = [message.blob_key, message.wire_blob_key]
    assert message.state == MessageState.RETRYING and all(keys)
    long_ago = time.time() - 7 * 24 * 3600
    for key in keys:
        os.utime(net.gateway.blobs.path(key), (long_ago, long_ago))
    sweep_blobs(net.gateway, force=True)
    assert all(net.gateway.blobs.exists(key) for key in keys)
