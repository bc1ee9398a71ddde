"""The gateway as its own process on 127.0.0.1: our AS4 core and the independent `as4` package send over real HTTP
(Content-Length and chunked); the receipts verify and the stored document is the SBD that was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from accesspoint.config import load_config
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.outbound import build_message
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.flows.webhooks import INBOUND_RECEIVED
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import ApiClient, ApiRole, Event, Message, MessageState, Organisation
from certs.keystore import KeyMaterial, load_pem
from tests.e2e.gateway_process import GatewayProcess
from tests.interop.as4peer.venv import ensure_as4_python
from tests.interop.keys import PeerParty
from tests.interop.peers import Parties, peer_send

NOW = datetime.now(UTC)  # the tests' time for what they build

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("e2e") / "data")
    process.prepare()
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def sender(gateway_process: GatewayProcess) -> KeyMaterial:
    return gateway_process.sender()[0]


@pytest.fixture(scope="module")
def token(gateway_process: GatewayProcess) -> str:
    """A network API token of the organisation that receives (the one `prepare` made)."""
    gateway = build_gateway(load_config(None, gateway_process.env), migrate=False)
    try:
        with gateway.read() as session:
            organisation = session.scalars(select(Organisation)).one()
            client, secret = ApiClient.issue("e2e", ApiRole.NETWORK, organisation.id)
            session.add(client)
    finally:
        gateway.engine.dispose()
    return secret


@pytest.fixture
def store(gateway_process: GatewayProcess) -> Iterator[Gateway]:
    """The same database and blob store the gateway process uses, read from the test."""
    gateway = build_gateway(load_config(None, gateway_process.env), migrate=False)
    yield gateway
    gateway.engine.dispose()


def stored_by_as4_id(store: Gateway, as4_message_id: str) -> tuple[Message, bytes, list[Event]]:
    with store.read() as session:
        message = session.scalars(select(Message).where(Message.as4_message_id == as4_message_id)).one()
        events = list(session.scalars(select(Event).where(Event.message_id == message.id)))
        receipt = message.receipt.raw if message.receipt else b""
    return message, receipt, events


def document_of(store: Gateway, message: Message) -> bytes:
    with store.blobs.open(message.blob_key or "") as blob:
        return blob.read()


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_our_core_sends_and_the_receipt_verifies(gateway_process: GatewayProcess, sender: KeyMaterial, store: Gateway,
                                                 token: str, vectors: Path, transfer: str) -> None:
    invoice = (vectors / "bis" / "base-example.xml").read_bytes()
    sbd = build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=datetime.now(UTC)), invoice)
    recipient = load_pem(gateway_process.pki.ap_key, gateway_process.pki.ap_cert).certificate
    with build_message(sbd=sbd, our_key=sender, recipient_cert=recipient, domain="sender.example", now=NOW) as message:
        body = message.chunks() if transfer == "chunked" else b"".join(message.chunks())
        response = requests.post(gateway_process.as4_url, data=body, timeout=60,
                                 headers={"Content-Type": message.content_type})
        sent_as = response.request.headers.get("Transfer-Encoding", "content-length")
        verdict = verify_receipt(response.content, sent_message_id=message.message_id,
                                 sent_references=message.sent_references)
    assert sent_as == ("chunked" if transfer == "chunked" else "content-length")
    assert response.status_code == 200, response.text[:500]
    assert verdict.valid, verdict.problems
    stored, receipt, events = stored_by_as4_id(store, message.message_id)
    assert receipt == response.content
    assert document_of(store, stored) == sbd
    assert stored.state == MessageState.NEW
    assert [e.type for e in events] == [INBOUND_RECEIVED]

    # the network collects it through the inbox API of the running gateway
    api = f"{gateway_process.url}/api/v1/inbound"
    auth = {"Authorization": f"Bearer {token}"}
    listed = requests.get(api, params={"state": "new", "limit": 100}, headers=auth, timeout=30).json()
    assert stored.id in [item["id"] for item in listed["items"]]
    metadata = requests.get(f"{api}/{stored.id}", headers=auth, timeout=30).json()
    assert metadata["as4_message_id"] == message.message_id
    assert requests.get(f"{api}/{stored.id}/document", params={"format": "sbd"}, headers=auth,
                        timeout=30).content == sbd
    assert requests.get(f"{api}/{stored.id}/document", headers=auth, timeout=30).content.strip() == invoice.strip()
    assert requests.get(f"{api}/{stored.id}/receipt", headers=auth, timeout=30).content == response.content


def test_as4_package_sends_and_accepts_our_receipt(gateway_process: GatewayProcess, store: Gateway, vectors: Path,
                                                   tmp_path: Path) -> None:
    python = ensure_as4_python()
    material, key_pem, cert_pem = gateway_process.sender("POP000006")
    ours = load_pem(gateway_process.pki.ap_key, gateway_process.pki.ap_cert)
    parties = Parties(sender_ap=PeerParty("POP000006", material, key_pem, cert_pem),
                      receiver_ap=PeerParty(ours.subject_cn, ours, gateway_process.pki.ap_key,
                                            gateway_process.pki.ap_cert))
    result = peer_send(python, parties, vectors / "bis" / "base-example.xml", tmp_path / "send",
                       url=gateway_process.as4_url)
    assert result["response"]["status"] == 200
    assert result["verdict"]["successful"] is True, json.dumps(result["verdict"])
    assert result["verdict"]["problem"] is None and result["verdict"]["error"] is None
    stored, receipt, _ = stored_by_as4_id(store, result["message_id"])
    assert receipt == Path(result["response"]["body"]).read_bytes()
    assert document_of(store, stored) == Path(result["request"]["sbd"]).read_bytes()
    assert stored.peer_ap_cn == "POP000006"


def test_as4_package_hears_not_serviced(gateway_process: GatewayProcess, store: Gateway, vectors: Path,
                                        tmp_path: Path) -> None:
    python = ensure_as4_python()
    material, key_pem, cert_pem = gateway_process.sender("POP000007")
    ours = load_pem(gateway_process.pki.ap_key, gateway_process.pki.ap_cert)
    parties = Parties(sender_ap=PeerParty("POP000007", material, key_pem, cert_pem),
                      receiver_ap=PeerParty(ours.subject_cn, ours, gateway_process.pki.ap_key,
                                            gateway_process.pki.ap_cert),
                      recipient="0002:FR99999")
    result = peer_send(python, parties, vectors / "bis" / "base-example.xml", tmp_path / "send",
                       url=gateway_process.as4_url)
    error = result["verdict"]["error"]
    assert result["verdict"]["successful"] is False
    assert error["code"] == "EBMS:0004" and "PEPPOL:NOT_SERVICED" in error["detail"]
    with store.read() as session:
        assert session.scalars(select(Message).where(Message.as4_message_id == result["message_id"])).all() == []


def test_hostile_request_leaves_the_process_serving(gateway_process: GatewayProcess) -> None:
    response = requests.post(gateway_process.as4_url, data=b"--b\r\nContent-Type: x\r\n\r\n<a",
                             headers={"Content-Type": 'multipart/related; boundary="b"'}, timeout=30)
    assert response.status_code == 400 and response.text.startswith("EBMS:0007")
    oversized_header = requests.post(gateway_process.as4_url, data=b"x", timeout=30,
                                     headers={"Content-Type": "multipart/related; boundary=" + "b" * 20000})
    assert oversized_header.status_code == 431  # Request Header Fields Too Large, from gunicorn before the app
    assert requests.get(gateway_process.as4_url, timeout=30).status_code == 405
    assert requests.get(f"{gateway_process.url}/health", timeout=30).status_code == 200
