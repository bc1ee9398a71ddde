"""The network API for sending: checks before queueing (422 naming the field), idempotency, listing, lookup,
organisation scoping, and the OpenAPI description."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from accesspoint.app import create_app
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.flows.sending import send_due
from accesspoint.store.liveness import beat
from accesspoint.store.models import ApiClient, ApiRole, Message, Organisation, WorkerHeartbeat
from smp.identifiers import ParticipantId
from tests.sending.harness import RECEIVER, SENDER, Network, invoice, network


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with network(tmp_path_factory.mktemp("api")) as built:
        built.register(RECEIVER)
        yield built


@pytest.fixture(scope="module")
def api(net: Network) -> FlaskClient:
    return create_app(gateway=net.gateway).test_client()


@pytest.fixture
def document(vectors: Path) -> bytes:
    return invoice(vectors / "bis" / "base-example.xml")


def auth(net: Network, token: str | None = None, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or net.token}", **headers}


def post(api: FlaskClient, net: Network, body: bytes, query: str = "", token: str | None = None,
         content_type: str = "application/xml", **headers: str):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v1/outbound{query}", data=body, content_type=content_type,
                    headers=auth(net, token, **headers))


def count(net: Network) -> int:
    with net.gateway.sessions() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


def assert_unprocessable(response, field: str, text: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["field"] == field and text in problem["detail"], problem


def test_submit_answers_202_with_the_derived_header(api: FlaskClient, net: Network, document: bytes) -> None:
    response = post(api, net, document)
    assert response.status_code == 202
    body = response.get_json()
    assert body["state"] == "queued"
    assert body["sender"] == SENDER.uri and body["receiver"] == RECEIVER.uri
    assert body["document_type"].endswith("::Invoice##urn:cen.eu:en16931:2017#compliant#"
                                          "urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
    assert body["process"] == "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert body["country_c1"] == "GB"
    assert response.headers["Location"] == f"/api/v1/outbound/{body['id']}"


def test_complete_sbd_is_accepted_unchanged(api: FlaskClient, net: Network, document: bytes) -> None:
    sbd = build_sbd(sbdh_from_ubl(document, country_c1="SE", creation=datetime.now(UTC)), document)
    response = post(api, net, sbd)
    assert response.status_code == 202
    body = response.get_json()
    assert body["country_c1"] == "SE"
    with net.gateway.sessions() as session:
        key = session.get(Message, body["id"]).blob_key
    with net.gateway.blobs.open(key) as stored:
        assert stored.read() == sbd


def test_idempotency_key_returns_the_first_answer(api: FlaskClient, net: Network, document: bytes) -> None:
    before = count(net)
    first = post(api, net, document, **{"Idempotency-Key": "invoice-4711"})
    second = post(api, net, document, **{"Idempotency-Key": "invoice-4711"})
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count(net) == before + 1


def test_receiver_check_digit_is_checked_before_queueing(api: FlaskClient, net: Network, vectors: Path) -> None:
    before = count(net)
    bad = invoice(vectors / "bis" / "base-example.xml", receiver=ParticipantId("iso6523-actorid-upis",
                                                                               "0007:5560360794"))
    assert_unprocessable(post(api, net, bad), "receiver", "check digit")
    assert_unprocessable(post(api, net, invoice(vectors / "bis" / "base-example.xml"), "?receiver=0007:123"),
                         "receiver", "10 digits")
    assert count(net) == before


def test_sender_must_belong_to_the_calling_organisation(api: FlaskClient, net: Network, vectors: Path) -> None:
    stranger = ParticipantId.parse("0007:5565475489")
    assert_unprocessable(post(api, net, invoice(vectors / "bis" / "base-example.xml", sender=stranger)),
                         "sender", "not a participant of this access point")
    with net.gateway.read() as session:
        other = Organisation(name="Other AB", country="SE")
        session.add(other)
        session.flush()
        client, token = ApiClient.issue("other", ApiRole.NETWORK, other.id)
        session.add(client)
    assert_unprocessable(post(api, net, invoice(vectors / "bis" / "base-example.xml"), token=token),
                         "sender", "not a participant of your organisation")


def test_document_problems_name_the_field(api: FlaskClient, net: Network, document: bytes) -> None:
    assert_unprocessable(post(api, net, b"no XML at all"), "document", "not well-formed")
    no_profile = re.sub(rb"<cbc:ProfileID>[^<]*</cbc:ProfileID>", b"", document)
    assert_unprocessable(post(api, net, no_profile), "process", "ProfileID")
    no_country = re.sub(rb"<cbc:IdentificationCode>GB</cbc:IdentificationCode>", b"", document)
    assert_unprocessable(post(api, net, no_country), "country_c1", "C1 country")
    not_ubl = b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>'
    assert_unprocessable(post(api, net, not_ubl), "document", "complete SBD")
    unsupported = post(api, net, document, content_type="application/json")
    assert unsupported.status_code == 415


def test_authentication_is_required(api: FlaskClient) -> None:
    response = api.get("/api/v1/outbound")
    assert response.status_code == 401 and response.mimetype == "application/problem+json"


def test_list_filters_by_state_and_pages(api: FlaskClient, net: Network, document: bytes) -> None:
    for _ in range(3):
        assert post(api, net, document).status_code == 202
    queued = api.get("/api/v1/outbound?state=queued&limit=2", headers=auth(net)).get_json()
    assert len(queued["items"]) == 2 and all(m["state"] == "queued" for m in queued["items"])
    rest = api.get(queued["next"].replace("limit=2", "limit=200"), headers=auth(net)).get_json()
    seen = [m["id"] for m in queued["items"] + rest["items"]]
    assert len(seen) == len(set(seen)) >= 3 and rest["next"] is None
    while send_due(net.gateway):
        pass
    sent = api.get("/api/v1/outbound?state=sent&limit=200", headers=auth(net)).get_json()["items"]
    assert {m["id"] for m in sent} >= set(seen)
    assert api.get("/api/v1/outbound?state=bogus", headers=auth(net)).status_code == 400


def test_list_finds_a_message_by_its_invoice_number(api: FlaskClient, net: Network, document: bytes) -> None:
    numbered = document.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>INV-2026-0042</cbc:ID>", 1)
    submitted = post(api, net, numbered).get_json()
    assert submitted["document_id"] == "INV-2026-0042" and submitted["sbdh_instance_id"]
    found = api.get("/api/v1/outbound?document_id=INV-2026-0042", headers=auth(net)).get_json()["items"]
    assert [m["id"] for m in found] == [submitted["id"]]
    same = {"sender": submitted["sender"], "receiver": submitted["receiver"],
            "document_type": submitted["document_type"], "since": submitted["created_at"], "order": "oldest"}
    listed = api.get("/api/v1/outbound", query_string=same, headers=auth(net)).get_json()["items"]
    assert listed[0]["id"] == submitted["id"]
    assert api.get("/api/v1/outbound", query_string={"until": submitted["created_at"], "document_id":
                   "INV-2026-0042"}, headers=auth(net)).get_json()["items"] == []


def test_another_organisation_cannot_see_a_message(api: FlaskClient, net: Network, document: bytes) -> None:
    message_id = post(api, net, document).get_json()["id"]
    with net.gateway.read() as session:
        other = Organisation(name="Nosy AB", country="SE")
        session.add(other)
        session.flush()
        client, token = ApiClient.issue("nosy", ApiRole.NETWORK, other.id)
        session.add(client)
    assert api.get(f"/api/v1/outbound/{message_id}", headers=auth(net, token)).status_code == 404
    assert api.post(f"/api/v1/outbound/{message_id}/retry", headers=auth(net, token)).status_code == 404


def test_lookup_answers_through_which_access_point(api: FlaskClient, net: Network) -> None:
    found = api.get(f"/api/v1/lookup/{RECEIVER.value}", headers=auth(net)).get_json()
    assert found["can_receive"] is True
    assert found["access_point"]["seat_id"] == "POP000002"
    assert found["access_point"]["endpoint_url"] == net.as4_url
    missing = api.get("/api/v1/lookup/0007:5566778899", headers=auth(net)).get_json()
    assert missing["can_receive"] is False and missing["reason"] == "0007:5566778899 is not registered in Peppol"
    credit_note = ("busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##"
                   "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
    unsupported = api.get(f"/api/v1/lookup/{RECEIVER.value}", query_string={"doctype": credit_note},
                          headers=auth(net)).get_json()
    assert unsupported["can_receive"] is False
    assert unsupported["reason"] == "the receiver's SMP has no endpoint for Peppol BIS Billing 3.0 credit notes"
    invalid = api.get("/api/v1/lookup/0007:5560360794", headers=auth(net))
    assert invalid.status_code == 422 and invalid.get_json()["field"] == "participant"


def test_openapi_describes_the_sending_paths(api: FlaskClient) -> None:
    document = api.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/outbound", "/api/v1/outbound/{message_id}", "/api/v1/outbound/{message_id}/receipt",
            "/api/v1/outbound/{message_id}/retry", "/api/v1/lookup/{participant}"} <= set(document["paths"])
    assert "OutboundMessage" in document["components"]["schemas"]


def test_a_queued_message_says_when_no_worker_is_running(api: FlaskClient, net: Network, document: bytes,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with net.gateway.write() as session:
        session.execute(delete(WorkerHeartbeat))
    with caplog.at_level("WARNING", logger="accesspoint.flows.submission"):
        submitted = post(api, net, document)
    assert submitted.status_code == 202
    assert submitted.get_json()["state"] == "queued"
    assert "No background worker is running" in submitted.get_json()["hint"]
    assert any("no background worker is running" in r.getMessage() and r.message_id == submitted.get_json()["id"]
               for r in caplog.records)
    status = api.get(submitted.headers["Location"], headers=auth(net)).get_json()
    assert "peppol-ap worker" in status["hint"]
    listed = api.get("/api/v1/outbound?state=queued", headers=auth(net)).get_json()["items"]
    assert all("No background worker" in item["hint"] for item in listed)
    # a worker reports: the hint goes
    with net.gateway.write() as session:
        beat(session, "test-worker", datetime.now(UTC))
    assert api.get(submitted.headers["Location"], headers=auth(net)).get_json()["hint"] is None
    send_due(net.gateway)
    assert api.get(submitted.headers["Location"], headers=auth(net)).get_json()["state"] == "sent"
