"""Sending end to end over real HTTP: two gateway processes on 127.0.0.1 (A serves X, B serves Y), a NAPTR DNS
server for both, their signed SMP metadata, and `peppol-ap worker` processes of A. X's invoice submitted to A's API
arrives in B's store, and A's status becomes `sent` with B's verified receipt; each failure path ends in the right
state and reason; three workers on PostgreSQL deliver 500 messages exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography import x509
from sqlalchemy import Engine, func, make_url, select, text

from accesspoint.store.models import Direction, Message
from base import safexml
from certs.devpki import issue_leaf
from certs.keystore import load_pkcs12
from certs.validation import CertificateValidator
from smp.identifiers import ParticipantId
from tests.e2e.send_world import SendWorld, X, Y, open_store, send_world, token_for
from tests.sending.harness import FakeAccessPoint, invoice, serve_wsgi

pytestmark = pytest.mark.integration

EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SendWorld]:
    with send_world(tmp_path_factory.mktemp("send-e2e")) as built:
        built.start_workers(1)
        yield built


@pytest.fixture
def document(vectors: Path) -> bytes:
    return invoice(vectors / "bis" / "base-example.xml", X, Y)


def b_certificate(world: SendWorld) -> x509.Certificate:
    env = world.b.env
    return load_pkcs12(env["PEPPOL_AP_KEYSTORE__PKCS12"], env["PEPPOL_AP_KEYSTORE__PASSWORD"]).certificate


def inbound(world: SendWorld, as4_message_id: str) -> list[Message]:
    store = open_store(world.b)
    try:
        with store.sessions() as session:
            return list(session.scalars(select(Message).where(Message.direction == Direction.INBOUND,
                                                              Message.as4_message_id == as4_message_id)))
    finally:
        store.engine.dispose()


def test_invoice_arrives_at_b_and_a_holds_the_verified_receipt(world: SendWorld, document: bytes) -> None:
    message_id = world.submit(document)
    body = world.wait_for(message_id)
    assert body["state"] == "sent", body
    assert body["receiving_ap"] == {"seat_id": "POP000002", "endpoint_url": world.b.as4_url}
    stored = inbound(world, body["as4_message_id"])
    assert len(stored) == 1
    assert stored[0].sbdh_instance_id == body["sbdh_instance_id"]
    assert stored[0].receiver == Y.uri and stored[0].sender == X.uri
    # in B's inbox for Y's organisation: the SBD exactly as A stored and sent it
    b_auth = {"Authorization": f"Bearer {token_for(world.b, Y)}"}
    listed = requests.get(f"{world.b.url}/api/v1/inbound", headers=b_auth, timeout=30).json()["items"]
    [item] = [i for i in listed if i["as4_message_id"] == body["as4_message_id"]]
    received_sbd = requests.get(f"{world.b.url}/api/v1/inbound/{item['id']}/document", params={"format": "sbd"},
                                headers=b_auth, timeout=30).content
    a_store = open_store(world.a)
    try:
        with a_store.sessions() as session:
            blob_key = session.get(Message, message_id).blob_key
        with a_store.blobs.open(blob_key or "") as sent_sbd:
            assert received_sbd == sent_sbd.read()
    finally:
        a_store.engine.dispose()
    receipt = requests.get(f"{world.a.url}/api/v1/outbound/{message_id}/receipt", headers=world.headers(), timeout=30)
    assert receipt.status_code == 200
    ref = safexml.parse_bytes(receipt.content).findtext(f".//{{{EB}}}RefToMessageId")
    assert ref == body["as4_message_id"]


def test_receiver_not_registered(world: SendWorld, document: bytes) -> None:
    response = requests.post(f"{world.a.url}/api/v1/outbound", params={"receiver": "0007:5566778899"}, data=document,
                             headers=world.headers(**{"Content-Type": "application/xml"}), timeout=30)
    assert response.status_code == 202
    body = world.wait_for(response.json()["id"])
    assert body["state"] == "failed"
    assert body["reason"].startswith("0007:5566778899 is not registered in Peppol")


def test_document_type_not_supported(world: SendWorld, vectors: Path) -> None:
    invoices_only = ParticipantId.parse("0007:2021005489")  # its SMP lists invoices, not credit notes
    world.register(invoices_only, world.b.as4_url, b_certificate(world))
    credit_note = invoice(vectors / "bis" / "base-creditnote-correction.xml", X, invoices_only)
    body = world.wait_for(world.submit(credit_note))
    assert body["state"] == "failed"
    assert body["reason"].startswith("the receiver's SMP has no endpoint for Peppol BIS Billing 3.0 credit notes")


def test_b_down_retries_then_sent_once_b_is_back(world: SendWorld, document: bytes) -> None:
    world.b.stop()
    try:
        message_id = world.submit(document)
        retrying = world.wait_for(message_id, ("retrying",))
        assert retrying["attempts"][0]["error_code"] == "connection"
    finally:
        world.b.start()
    body = world.wait_for(message_id)
    assert body["state"] == "sent"
    assert body["as4_message_id"] == retrying["as4_message_id"]  # resent after a transport failure: same MessageId
    assert len(inbound(world, body["as4_message_id"])) == 1


def test_b_answers_an_ebms_error(world: SendWorld, vectors: Path) -> None:
    stranger = ParticipantId.parse("0007:5565475489")  # the SMP names B, but B does not serve it
    world.register(stranger, world.b.as4_url, b_certificate(world))
    body = world.wait_for(world.submit(invoice(vectors / "bis" / "base-example.xml", X, stranger)))
    assert body["state"] == "failed"
    assert body["reason"].startswith("the receiving access point rejected the message: EBMS:0004")
    assert "PEPPOL:NOT_SERVICED" in body["reason"]
    assert len(body["attempts"]) == 1


def test_receipt_with_a_wrong_digest_fails(world: SendWorld, vectors: Path) -> None:
    pki = world.a.pki
    leaf = issue_leaf(pki, cn="POP000003")
    key = load_pkcs12(leaf.p12, pki.password)
    fake = FakeAccessPoint(key, CertificateValidator(pki.anchors()), mode="bad-digest")
    receiver = ParticipantId.parse("0007:5566778899")
    with serve_wsgi(fake) as base:
        world.register(receiver, f"{base}/as4", key.certificate)
        body = world.wait_for(world.submit(invoice(vectors / "bis" / "base-example.xml", X, receiver)))
    assert body["state"] == "failed" and body["error_code"] == "EBMS:0302"
    assert "DigestValue differs" in body["reason"]
    assert fake.received == [body["as4_message_id"]]


def test_three_workers_on_postgresql_deliver_500_messages_exactly_once(tmp_path: Path, vectors: Path,
                                                                       postgres_admin: Engine) -> None:
    name = f"peppol_e2e_{tmp_path.name[-8:].lower()}"
    with postgres_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin.url).set(database=name).render_as_string(hide_password=False)
    document = invoice(vectors / "bis" / "base-example.xml", X, Y)
    try:
        with send_world(tmp_path, a_database_url=url, b_workers=2, response_timeout_seconds=60) as world:
            world.start_workers(3)
            with ThreadPoolExecutor(4) as pool:
                ids = list(pool.map(lambda _: world.submit(document), range(500)))
            for message_id in ids:
                assert world.wait_for(message_id, timeout=600)["state"] == "sent"
            store = open_store(world.b)
            try:
                with store.sessions() as session:
                    inbound_rows = select(Message).where(Message.direction == Direction.INBOUND)
                    count = session.scalar(select(func.count()).select_from(inbound_rows.subquery()))
                    distinct_as4 = session.scalar(select(func.count(func.distinct(Message.as4_message_id)))
                                                  .where(Message.direction == Direction.INBOUND))
                    distinct_sbdh = session.scalar(select(func.count(func.distinct(Message.sbdh_instance_id)))
                                                   .where(Message.direction == Direction.INBOUND))
            finally:
                store.engine.dispose()
            assert count == distinct_as4 == distinct_sbdh == 500
    finally:
        with postgres_admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
