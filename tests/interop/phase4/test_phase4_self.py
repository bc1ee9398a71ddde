"""phase4 -> phase4 on loopback: proves the peer and its harness before our gateway takes either side."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from lxml import etree

from certs.devpki import IssuedLeaf
from tests.interop.phase4.harness import BIS3_CREDIT_NOTE, BIS3_INVOICE, BIS3_PROCESS, Phase4Peer, SendResult
from tests.interop.phase4.proxy import CorruptingProxy, flip_byte_in_last_part

pytestmark = [pytest.mark.interop, pytest.mark.phase4]

SENDER = "0088:9482348239847239874"  # base-example.xml seller EndpointID
RECEIVER = "0002:FR23342"  # base-example.xml buyer EndpointID
SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
BIG_DOCUMENT_BYTES = 20 * 1024 * 1024


def _send_to_self(
    peer: Phase4Peer,
    leaf: IssuedLeaf,
    payload: Path,
    *,
    document_type: str = BIS3_INVOICE,
    message_id: str | None = None,
    endpoint_url: str | None = None,
) -> SendResult:
    return peer.send(
        sender=SENDER,
        receiver=RECEIVER,
        document_type=document_type,
        process=BIS3_PROCESS,
        country_c1="GB",
        payload_path=payload,
        endpoint_url=endpoint_url or peer.as4_url,
        receiver_cert_pem=leaf.cert_pem.read_text(),
        message_id=message_id,
    )


def _canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n2", strip_text=True)


def _inbox_entry(peer: Phase4Peer, message_id: str) -> dict:
    matches = [e for e in peer.inbox() if e["messageId"] == message_id]
    assert len(matches) == 1, f"expected one inbox entry for {message_id}, inbox has {peer.inbox()}"
    return matches[0]


@pytest.mark.parametrize(
    ("vector", "document_type"),
    [("base-example.xml", BIS3_INVOICE), ("base-creditnote-correction.xml", BIS3_CREDIT_NOTE)],
)
def test_bis3_document_to_own_receiver(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                       vectors: Path, vector: str, document_type: str) -> None:
    peer = peer_receiver_defaults
    document = vectors / "bis" / vector
    sent = _send_to_self(peer, phase4_peer_leaf, document, document_type=document_type)

    assert sent.result == "SUCCESS", sent
    assert sent.signature_checked, "phase4 did not verify the receipt's signature"
    assert sent.nrr == "onSuccess", f"NRR references did not match: {sent.nrr_text}"
    assert sent.accepted
    assert sent.receipt and not sent.ebms_errors
    assert sent.ref_to_message_id == sent.message_id
    assert sent.signing_cert_subject and "CN=POP000002" in sent.signing_cert_subject
    receipt = etree.parse(sent.response_path).getroot()
    assert receipt.find(".//{http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0}NonRepudiationInformation") \
        is not None

    entry = _inbox_entry(peer, sent.message_id)
    # phase4's identifier factory lower-cases iso6523-actorid-upis values (they are case-insensitive in Peppol).
    assert entry["sender"] == f"iso6523-actorid-upis::{SENDER}".lower()
    assert entry["receiver"] == f"iso6523-actorid-upis::{RECEIVER}".lower()
    assert entry["documentType"] == f"busdox-docid-qns::{document_type}"
    assert entry["process"] == f"cenbii-procid-ubl::{BIS3_PROCESS}"
    assert entry["countryC1"] == "GB"
    assert entry["fromPartyId"] == entry["toPartyId"] == "POP000002"
    assert "CN=POP000002" in entry["signingCertSubject"]
    sidecar = Path(entry["sbdPath"]).with_name(Path(entry["sbdPath"]).name.replace(".sbd.xml", ".json"))
    assert json.loads(sidecar.read_text())["messageId"] == sent.message_id

    # The stored SBD carries the document unchanged (compared as canonical XML: phase4 re-serialises it).
    sbd = etree.parse(entry["sbdPath"]).getroot()
    assert sbd.tag == f"{{{SBDH_NS}}}StandardBusinessDocument"
    original = etree.parse(str(document)).getroot()
    [business] = [child for child in sbd if child.tag == original.tag]
    assert _canonical(business) == _canonical(original)


def test_20_mb_document_to_own_receiver(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                        bis_invoice: Path, tmp_path: Path) -> None:
    peer = peer_receiver_defaults
    # Grow the payment-terms note until the invoice is 20 MB; phase4 does not validate, so only size matters here.
    text = bis_invoice.read_text(encoding="utf-8")
    note = "Payment within 10 days, 2% discount"
    filler = "x" * (BIG_DOCUMENT_BYTES - len(text.encode()))
    big = tmp_path / "big-invoice.xml"
    big.write_text(text.replace(note, note + " " + filler, 1), encoding="utf-8")
    assert big.stat().st_size > BIG_DOCUMENT_BYTES

    sent = _send_to_self(peer, phase4_peer_leaf, big)

    assert sent.accepted, sent
    entry = _inbox_entry(peer, sent.message_id)
    assert entry["sbdSize"] > BIG_DOCUMENT_BYTES
    sbd = etree.parse(entry["sbdPath"], etree.XMLParser(huge_tree=True)).getroot()
    original = etree.parse(str(big), etree.XMLParser(huge_tree=True)).getroot()
    [business] = [child for child in sbd if child.tag == original.tag]
    assert _canonical(business) == _canonical(original)


def test_payload_corrupted_in_transit_is_rejected(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                                  bis_invoice: Path) -> None:
    peer = peer_receiver_defaults
    with CorruptingProxy(peer.as4_url, flip_byte_in_last_part) as proxy:
        sent = _send_to_self(peer, phase4_peer_leaf, bis_invoice, endpoint_url=proxy.url)
    assert proxy.forwarded == 1
    assert sent.result == "AS4_ERROR_MESSAGE_RECEIVED", sent
    # One flipped bit in the AES-GCM ciphertext: WSS4J fails, which phase4 reports as EBMS:0102 FailedDecryption.
    assert sent.error_codes == ["EBMS:0102"]
    assert not [e for e in peer.inbox() if e["messageId"] == sent.message_id]


def test_duplicate_message_id_is_rejected(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                          bis_invoice: Path) -> None:
    peer = peer_receiver_defaults
    message_id = f"{uuid.uuid4()}@interop.test"
    first = _send_to_self(peer, phase4_peer_leaf, bis_invoice, message_id=message_id)
    assert first.accepted, first
    assert first.message_id == message_id

    second = _send_to_self(peer, phase4_peer_leaf, bis_invoice, message_id=message_id)
    assert second.result == "AS4_ERROR_MESSAGE_RECEIVED", second
    assert not second.receipt
    # phase4 >= 4.5.0 answers EBMS:4001 DuplicateDetected; 4.4.x (what Maven Central offers here) answers
    # EBMS:0004 with a "same ID" detail. Either way exactly one error, and the duplicate is not delivered again.
    [error] = second.ebms_errors
    version = tuple(int(x) for x in peer.status()["phase4Version"].split(".")[:2])
    if version >= (4, 5):
        assert error["code"] == "EBMS:4001"
    else:
        assert error["code"] == "EBMS:0004"
        assert message_id in (error["detail"] or "")
    assert len([e for e in peer.inbox() if e["messageId"] == message_id]) == 1


def test_same_document_under_new_message_id_is_accepted_again(peer_receiver_defaults: Phase4Peer,
                                                             phase4_peer_leaf: IssuedLeaf, bis_invoice: Path) -> None:
    """phase4 detects duplicates by AS4 MessageId only; the same SBDH InstanceIdentifier again is a new message."""
    peer = peer_receiver_defaults
    instance_id = str(uuid.uuid4())
    common = {
        "sender": SENDER, "receiver": RECEIVER, "document_type": BIS3_INVOICE, "process": BIS3_PROCESS,
        "country_c1": "GB", "payload_path": bis_invoice, "endpoint_url": peer.as4_url,
        "receiver_cert_pem": phase4_peer_leaf.cert_pem.read_text(), "sbdh_instance_identifier": instance_id,
    }
    first = peer.send(**common)
    second = peer.send(**common)
    assert first.accepted and second.accepted, (first, second)
    assert first.message_id != second.message_id
    entries = [e for e in peer.inbox() if e["instanceIdentifier"] == instance_id]
    assert sorted(e["messageId"] for e in entries) == sorted([first.message_id, second.message_id])


def test_failing_handler_answers_ebms_0004(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                           bis_invoice: Path) -> None:
    peer = peer_receiver_defaults
    peer.configure_receiver(handler_failure="back end is down")
    # Inline payload this time (the other tests send a file path).
    sent = peer.send(sender=SENDER, receiver=RECEIVER, document_type=BIS3_INVOICE, process=BIS3_PROCESS,
                     country_c1="GB", payload_xml=bis_invoice.read_text(encoding="utf-8"), endpoint_url=peer.as4_url,
                     receiver_cert_pem=phase4_peer_leaf.cert_pem.read_text())
    assert sent.result == "AS4_ERROR_MESSAGE_RECEIVED", sent
    [error] = sent.ebms_errors
    assert error["code"] == "EBMS:0004"
    assert "back end is down" in error["detail"]
    assert not [e for e in peer.inbox() if e["messageId"] == sent.message_id]


def test_bad_send_request_is_reported_not_sent(phase4_peer: Phase4Peer, bis_invoice: Path) -> None:
    sent = phase4_peer.send(sender=SENDER, receiver=RECEIVER, document_type=BIS3_INVOICE, process=BIS3_PROCESS,
                            country_c1="GB", payload_path=bis_invoice, endpoint_url=phase4_peer.as4_url,
                            receiver_cert_pem="-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert sent.result == "PEER_ERROR"
    assert sent.message_id is None and not sent.signal_received
    assert "receiverCertPem is not a PEM X.509 certificate" in (sent.exception or "")
