"""Our AS4 core against the independent `as4` 0.2.0 implementation, in both directions, over real sockets.

(a) as4's sender builds messages, our `open_message` opens them;
(b) our `build_message` output is POSTed to the as4 receiver, and its receipt passes our `verify_receipt`;
(c) as4's sender POSTs to a loopback server running our `open_message` + `respond`/`error_response`, and as4's
    `receive_signal()` judges our signals.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from accesspoint.core.as4 import messaging
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.inbound import InboundMessage, InboundRefusal, error_response, open_message, respond
from accesspoint.core.peppol.outbound import build_message
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from certs.validation import Purpose
from smp.identifiers import ParticipantId
from tests.interop.conftest import NOT_SERVICED
from tests.interop.keys import PeerPki
from tests.interop.loopback import serve
from tests.interop.peers import As4Receiver, Parties, peer_send, read_request

pytestmark = pytest.mark.interop

CREDIT_NOTE_DOCTYPE = (
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)


def _open(peer_pki: PeerPki, headers: dict[str, str], body: bytes) -> InboundMessage:
    validator = peer_pki.validator()
    content_type = next(value for name, value in headers.items() if name.lower() == "content-type")
    return open_message(
        body,
        content_type,
        our_key=peer_pki.ours.material,
        now=datetime.now(UTC), check_signer=lambda certificate: validator.validate(certificate, Purpose.AP_SIGNING),
    )


# --------------------------------------------------------------------------- (a) as4 sends, we open


@pytest.mark.parametrize(
    ("document", "doctype"),
    [("base-example.xml", None), ("base-creditnote-correction.xml", CREDIT_NOTE_DOCTYPE)],
)
def test_as4_messages_are_opened_by_our_core(
    as4_python: Path, peer_pki: PeerPki, to_us: Parties, vectors: Path, tmp_path: Path, document: str,
    doctype: str | None,
) -> None:
    parties = dataclasses.replace(to_us, doctype=doctype) if doctype else to_us
    result = peer_send(as4_python, parties, vectors / "bis" / document, tmp_path / "send")
    headers, body = read_request(result)

    with _open(peer_pki, headers, body) as inbound:
        sent_sbd = Path(result["request"]["sbd"]).read_bytes()
        assert inbound.payload is not None
        assert inbound.payload.read() == sent_sbd
        assert inbound.payload_size == len(sent_sbd)
        assert inbound.message_id == result["message_id"]
        assert inbound.signer == peer_pki.theirs.certificate
        assert inbound.user_message.from_party == "POP000002" and inbound.user_message.to_party == "POP000001"
        assert inbound.sbdh is not None
        assert inbound.sbdh.sender == ParticipantId.parse(parties.sender)
        assert inbound.sbdh.receiver == ParticipantId.parse(parties.recipient)
        assert inbound.sbdh.document_type.value == parties.doctype
        assert inbound.sbdh.process.value == parties.process
        # What we would acknowledge is exactly what as4 signed.
        assert [r.get("URI") for r in inbound.signature.signed_info_references] == [
            r["uri"] for r in result["sent_references"]
        ]


@pytest.fixture
def large_invoice(invoice: Path, tmp_path: Path) -> Path:
    """The BIS example with a 3 MB note: every part spills from memory to disk on both sides (threshold 1 MiB).

    The note is random base64, so it compresses about as little as real content with attachments; repeated text
    would exceed the gzip-bomb ratio bound and be refused, as it should.
    """
    note = "<cbc:Note>" + base64.b64encode(os.urandom(2_300_000)).decode() + "</cbc:Note>"
    text = invoice.read_text().replace("<cbc:DueDate>", note + "\n    <cbc:DueDate>", 1)
    path = tmp_path / "large-invoice.xml"
    path.write_text(text)
    return path


def test_large_as4_message_is_opened_by_our_core(
    as4_python: Path, peer_pki: PeerPki, to_us: Parties, large_invoice: Path, tmp_path: Path
) -> None:
    result = peer_send(as4_python, to_us, large_invoice, tmp_path / "send")
    headers, body = read_request(result)

    with _open(peer_pki, headers, body) as inbound:
        sent_sbd = Path(result["request"]["sbd"]).read_bytes()
        assert len(sent_sbd) > 3_000_000
        assert inbound.payload is not None and inbound.payload.read() == sent_sbd


def test_ids_that_are_not_ncnames_are_resolved(
    as4_python: Path, peer_pki: PeerPki, to_us: Parties, invoice: Path, tmp_path: Path
) -> None:
    # as4 gives the Body and the receiver's BST bare-UUID wsu:Ids; here both start with a digit for sure.
    result = peer_send(as4_python, to_us, invoice, tmp_path / "send", digit_ids=True)
    headers, body = read_request(result)

    with _open(peer_pki, headers, body) as inbound:
        assert inbound.user_message.body_id is not None and inbound.user_message.body_id[0] == "0"
        assert inbound.payload is not None
        assert inbound.payload.read() == Path(result["request"]["sbd"]).read_bytes()


def test_as4_message_from_an_untrusted_ap_is_refused(
    as4_python: Path, peer_pki: PeerPki, to_us: Parties, invoice: Path, tmp_path: Path
) -> None:
    result = peer_send(as4_python, to_us, invoice, tmp_path / "send")
    headers, body = read_request(result)
    content_type = headers["Content-Type"]

    with pytest.raises(InboundRefusal) as refused:
        open_message(
            body,
            content_type,
            our_key=peer_pki.ours.material,
            now=datetime.now(UTC),
            check_signer=lambda certificate: peer_pki.validator().validate(certificate, Purpose.SMP_SIGNING),
        )
    assert refused.value.code == "EBMS:0101"
    assert refused.value.message_id == result["message_id"]
    assert "POP000002" in refused.value.description


def test_as4_message_encrypted_for_another_ap_is_refused(
    as4_python: Path, peer_pki: PeerPki, to_peer: Parties, invoice: Path, tmp_path: Path
) -> None:
    # as4 encrypts for POP000002; we are POP000001 and hold no key for it.
    result = peer_send(as4_python, to_peer, invoice, tmp_path / "send")
    headers, body = read_request(result)

    with pytest.raises(InboundRefusal) as refused:
        _open(peer_pki, headers, body)
    assert refused.value.code == "EBMS:0102"


# --------------------------------------------------------------------------- (b) we send, as4 receives


def _our_sbd(document: Path, **changes: ParticipantId) -> bytes:
    sbdh = dataclasses.replace(sbdh_from_ubl(document.read_bytes(), creation=datetime.now(UTC)), **changes)
    return build_sbd(sbdh, document.read_bytes())


def test_our_message_is_accepted_by_as4_and_its_receipt_verifies(
    as4_receiver: As4Receiver, peer_pki: PeerPki, invoice: Path
) -> None:
    sbd = _our_sbd(invoice)
    with build_message(sbd=sbd, our_key=peer_pki.ours.material, recipient_cert=peer_pki.theirs.certificate,
                       now=datetime.now(UTC)) as out:
        # A generator body goes out chunked, which Peppol receivers must accept.
        response = requests.post(as4_receiver.url, data=out.chunks(), headers={"Content-Type": out.content_type},
                                 timeout=60)
        verdict = verify_receipt(response.content, sent_message_id=out.message_id,
                                 sent_references=out.sent_references)
        message_id = out.message_id

    assert response.status_code == 200
    assert verdict.valid, verdict.problems
    assert verdict.signer == peer_pki.theirs.certificate
    assert verdict.ref_to_message_id == message_id
    [received] = as4_receiver.verdicts()
    assert received["successful"] is True, received["error"]
    assert received["message_id"] == message_id
    assert Path(received["payload"]).read_bytes() == sbd
    assert received["signer"] == peer_pki.ours.certificate.subject.rfc4514_string()


def test_our_message_with_content_length_is_accepted_by_as4(
    as4_receiver: As4Receiver, peer_pki: PeerPki, vectors: Path
) -> None:
    sbd = _our_sbd(vectors / "bis" / "Allowance-example.xml")
    with build_message(sbd=io.BytesIO(sbd), our_key=peer_pki.ours.material,
                       recipient_cert=peer_pki.theirs.certificate, now=datetime.now(UTC)) as out:
        body = b"".join(out.chunks())
        assert len(body) == out.content_length
        response = requests.post(as4_receiver.url, data=body, headers={"Content-Type": out.content_type}, timeout=60)
        verdict = verify_receipt(response.content, sent_message_id=out.message_id,
                                 sent_references=out.sent_references)

    assert verdict.valid, verdict.problems
    assert Path(as4_receiver.verdicts()[0]["payload"]).read_bytes() == sbd


def test_our_large_message_is_accepted_by_as4(
    as4_receiver: As4Receiver, peer_pki: PeerPki, large_invoice: Path
) -> None:
    sbd = _our_sbd(large_invoice)
    with build_message(sbd=sbd, our_key=peer_pki.ours.material, recipient_cert=peer_pki.theirs.certificate,
                       now=datetime.now(UTC)) as out:
        response = requests.post(as4_receiver.url, data=out.chunks(), headers={"Content-Type": out.content_type},
                                 timeout=120)
        verdict = verify_receipt(response.content, sent_message_id=out.message_id,
                                 sent_references=out.sent_references)

    assert verdict.valid, verdict.problems
    assert Path(as4_receiver.verdicts()[0]["payload"]).read_bytes() == sbd


def test_as4_not_serviced_error_reaches_our_sender_as_an_error(
    as4_receiver: As4Receiver, peer_pki: PeerPki, invoice: Path
) -> None:
    sbd = _our_sbd(invoice, receiver=ParticipantId.parse(NOT_SERVICED, strict=False))
    with build_message(sbd=sbd, our_key=peer_pki.ours.material, recipient_cert=peer_pki.theirs.certificate,
                       now=datetime.now(UTC)) as out:
        response = requests.post(as4_receiver.url, data=out.chunks(), headers={"Content-Type": out.content_type},
                                 timeout=60)
        verdict = verify_receipt(response.content, sent_message_id=out.message_id,
                                 sent_references=out.sent_references)
        message_id = out.message_id

    assert not verdict.valid and verdict.error_code == "EBMS:0302"
    signal = messaging.parse_envelope_bytes(response.content)
    assert signal.kind == "error" and signal.error is not None
    assert signal.error.codes == ("EBMS:0004",)
    assert signal.error.has_detail("PEPPOL:NOT_SERVICED")
    assert signal.error.ref_to_message_id == message_id


# --------------------------------------------------------------------------- (c) as4 sends, our server answers


def _our_endpoint(peer_pki: PeerPki, purpose: Purpose = Purpose.AP_SIGNING):
    """What /as4 will do: open the message, then answer with a signed receipt or a signed ebMS error (HTTP 200)."""
    validator = peer_pki.validator()
    opened: list[InboundMessage] = []

    def handle(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        key = peer_pki.ours.material
        try:
            inbound = open_message(body, headers.get("content-type"), our_key=key,
                                   now=datetime.now(UTC),
                                   check_signer=lambda certificate: validator.validate(certificate, purpose))
        except InboundRefusal as refusal:
            signal = error_response(refusal, refusal.message_id, key, now=datetime.now(UTC))
            return refusal.http_status, {"Content-Type": "application/soap+xml;charset=UTF-8"}, signal
        opened.append(inbound)
        receipt = respond(inbound, key, now=datetime.now(UTC))
        return 200, {"Content-Type": "application/soap+xml;charset=UTF-8"}, receipt.raw

    return handle, opened


def test_our_receipt_passes_as4_receive_signal(
    as4_python: Path, peer_pki: PeerPki, to_us: Parties, invoice: Path, tmp_path: Path
) -> None:
    handle, opened = _our_endpoint(peer_pki)
    with serve(handle) as url:
        result = peer_send(as4_python, to_us, invoice, tmp_path / "send", url=url)

    assert result["response"]["status"] == 200
    assert result["verdict"] == {"state": "acknowledged", "successful": True, "problem": None, "error": None}
    [inbound] = opened
    with inbound:
        assert inbound.message_id == result["message_id"]
        assert inbound.payload is not None
        assert inbound.payload.read() == Path(result["request"]["sbd"]).read_bytes()


def test_our_signed_error_is_understood_by_as4(
    as4_python: Path, peer_pki: PeerPki, to_us: Parties, invoice: Path, tmp_path: Path
) -> None:
    # Judging the AP certificate as an SMP certificate refuses every signer: we answer EBMS:0101.
    handle, opened = _our_endpoint(peer_pki, purpose=Purpose.SMP_SIGNING)
    with serve(handle) as url:
        result = peer_send(as4_python, to_us, invoice, tmp_path / "send", url=url)

    assert opened == []
    assert result["response"]["status"] == 200
    verdict = result["verdict"]
    assert verdict["state"] == "rejected", verdict
    assert verdict["problem"] is None  # as4 verified our signature on the error signal and its RefToMessageId
    assert verdict["error"]["code"] == "EBMS:0101"
    assert verdict["error"]["short_description"] == "FailedAuthentication"
    assert "POP000002" in verdict["error"]["description"]

