"""phase4 -> phase4 on loopback: proves the peer and its harness before our gateway takes either side."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from lxml import etree

from certs.devpki import IssuedLeaf
from tests.interop.phase4.harness import BIS3_INVOICE, BIS3_PROCESS, Phase4Peer, SendResult

pytestmark = pytest.mark.interop

SENDER = "0088:9482348239847239874"  # base-example.xml seller EndpointID
RECEIVER = "0002:FR23342"  # base-example.xml buyer EndpointID
SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"


def _send_to_self(peer: Phase4Peer, leaf: IssuedLeaf, payload: Path, message_id: str | None = None) -> SendResult:
    return peer.send(
        sender=SENDER,
        receiver=RECEIVER,
        document_type=BIS3_INVOICE,
        process=BIS3_PROCESS,
        country_c1="GB",
        payload_path=payload,
        endpoint_url=peer.as4_url,
        receiver_cert_pem=leaf.cert_pem.read_text(),
        message_id=message_id,
    )


def _inbox_entry(peer: Phase4Peer, message_id: str) -> dict:
    matches = [e for e in peer.inbox() if e["messageId"] == message_id]
    assert len(matches) == 1, f"expected one inbox entry for {message_id}, inbox has {peer.inbox()}"
    return matches[0]


def test_bis3_invoice_to_own_receiver(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                      bis_invoice: Path) -> None:
    peer = peer_receiver_defaults
    sent = _send_to_self(peer, phase4_peer_leaf, bis_invoice)

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
    assert entry["documentType"] == f"busdox-docid-qns::{BIS3_INVOICE}"
    assert entry["process"] == f"cenbii-procid-ubl::{BIS3_PROCESS}"
    assert entry["countryC1"] == "GB"
    assert entry["fromPartyId"] == entry["toPartyId"] == "POP000002"
    assert "CN=POP000002" in entry["signingCertSubject"]
    sidecar = Path(entry["sbdPath"]).with_name(Path(entry["sbdPath"]).name.replace(".sbd.xml", ".json"))
    assert json.loads(sidecar.read_text())["messageId"] == sent.message_id

    # The stored SBD carries the invoice unchanged (compared as canonical XML, since phase4 re-serialises it).
    sbd = etree.parse(entry["sbdPath"]).getroot()
    assert sbd.tag == f"{{{SBDH_NS}}}StandardBusinessDocument"
    invoice = sbd.find(f"{{{UBL_INVOICE_NS}}}Invoice")
    assert invoice is not None
    original = etree.parse(str(bis_invoice)).getroot()
    assert etree.tostring(invoice, method="c14n2", strip_text=True) == etree.tostring(
        original, method="c14n2", strip_text=True)


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


def test_failing_handler_answers_ebms_0004(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                           bis_invoice: Path) -> None:
    peer = peer_receiver_defaults
    peer.configure_receiver(handler_failure="back end is down")
    sent = _send_to_self(peer, phase4_peer_leaf, bis_invoice)
    assert sent.result == "AS4_ERROR_MESSAGE_RECEIVED", sent
    [error] = sent.ebms_errors
    assert error["code"] == "EBMS:0004"
    assert "back end is down" in error["detail"]
    assert not [e for e in peer.inbox() if e["messageId"] == sent.message_id]
