"""The AS4 composition without any peer: `outbound.build_message`/`seal` and `inbound.open_message`/`respond`/
`error_response`, with the dev PKI. The wire format is checked independently of our own reader too (plain
`cryptography` decrypts, hashlib recomputes the attachment digest)."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from accesspoint.config import load_config
from accesspoint.core.as4 import messaging, mime, ns, wssec
from accesspoint.core.as4.encryption import PlainAttachment, decrypt_attachments, encrypt_attachments
from accesspoint.core.as4.errors import NOT_SERVICED, OTHER, As4Error
from accesspoint.core.as4.messaging import Participant, PartInfo
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol import profile
from accesspoint.core.peppol.inbound import (
    InboundLimits,
    InboundMessage,
    InboundRefusal,
    error_response,
    open_message,
    respond,
)
from accesspoint.core.peppol.outbound import OutgoingMessage, build_message, seal, user_message_for
from accesspoint.core.peppol.steps import cross_check
from accesspoint.core.sbdh import Sbdh, SbdhError, build_sbd, sbdh_from_ubl
from base import safexml
from certs.devpki import DevPki, init_pki, issue_leaf
from certs.keystore import KeyMaterial, load_pem
from certs.validation import CertificateValidator, Purpose, Verdict
from smp.identifiers import ParticipantId, ProcessId
from tests.as4.namespaces import NSMAP

NOW = datetime.now(UTC)  # the tests' time for what they build



@dataclasses.dataclass(frozen=True)
class Aps:
    pki: DevPki
    sender: KeyMaterial  # POP000001
    receiver: KeyMaterial  # POP000002
    impostor: KeyMaterial  # POP000003, a valid AP that did not send the message

    def check_signer(self, certificate) -> Verdict:
        return CertificateValidator(self.pki.anchors()).validate(certificate, Purpose.AP_SIGNING)


@pytest.fixture(scope="module")
def aps(tmp_path_factory: pytest.TempPathFactory) -> Aps:
    pki = init_pki(tmp_path_factory.mktemp("composition") / "pki", ap_seat_id="POP000001")
    leaves = [issue_leaf(pki, cn=cn) for cn in ("POP000002", "POP000003")]
    receiver, impostor = (load_pem(leaf.key_pem, leaf.cert_pem) for leaf in leaves)
    return Aps(pki, load_pem(pki.ap_key, pki.ap_cert), receiver, impostor)


@pytest.fixture(scope="module")
def invoice(vectors: Path) -> bytes:
    return (vectors / "bis" / "base-example.xml").read_bytes()


@pytest.fixture(scope="module")
def sbdh(invoice: bytes) -> Sbdh:
    return sbdh_from_ubl(invoice, creation=datetime.now(UTC))


@pytest.fixture(scope="module")
def sbd(sbdh: Sbdh, invoice: bytes) -> bytes:
    return build_sbd(sbdh, invoice)


@pytest.fixture
def message(aps: Aps, sbd: bytes) -> Iterator[OutgoingMessage]:
    with build_message(sbd=sbd, our_key=aps.sender, recipient_cert=aps.receiver.certificate, now=NOW) as built:
        yield built


def _open(aps: Aps, out: OutgoingMessage, body: bytes | None = None, limits: InboundLimits | None = None,
          key: KeyMaterial | None = None) -> InboundMessage:
    data = body if body is not None else b"".join(out.chunks())
    return open_message(data, out.content_type, our_key=key or aps.receiver,
                        now=NOW, check_signer=aps.check_signer, limits=limits)


def _refusal(aps: Aps, out: OutgoingMessage, **kwargs) -> InboundRefusal:
    with pytest.raises(InboundRefusal) as refused:
        _open(aps, out, **kwargs)
    return refused.value


def _sealed(aps: Aps, sbdh: Sbdh, sbd: bytes, signer: KeyMaterial | None = None, **changes) -> OutgoingMessage:
    """A message whose eb:UserMessage is changed after deriving it from the SBDH (then correctly signed)."""
    user_message = user_message_for(sbdh, from_party="POP000001", to_party="POP000002",
                                    content_id=mime.new_content_id(), domain="test.example", now=datetime.now(UTC))
    user_message = dataclasses.replace(user_message, **changes)
    return seal(user_message, io.BytesIO(sbd), sbdh, our_key=signer or aps.sender,
                recipient_cert=aps.receiver.certificate)


def _parts(out: OutgoingMessage) -> tuple[bytes, bytes]:
    """The SOAP part and the single attachment body as our MIME reader sees them."""
    with mime.parse_message(io.BytesIO(b"".join(out.chunks())), out.content_type) as parsed:
        return parsed.root.read_bytes(), parsed.attachments[0].read_bytes()


# --------------------------------------------------------------------------- outbound


def test_header_is_derived_from_the_sbdh(message: OutgoingMessage, sbdh: Sbdh) -> None:
    um = message.user_message
    assert (um.from_party, um.to_party) == ("POP000001", "POP000002")
    assert (um.service_type, um.service) == ("cenbii-procid-ubl", sbdh.process.value)
    assert um.action == f"busdox-docid-qns::{sbdh.document_type.value}"
    assert um.original_sender == Participant("iso6523-actorid-upis", "0088:9482348239847239874")
    assert um.final_recipient == Participant("iso6523-actorid-upis", "0002:FR23342")
    [part] = um.parts
    assert (part.mime_type, part.compression_type) == ("application/xml", "application/gzip")
    assert messaging.is_valid_message_id(message.message_id) and message.message_id == um.message_id
    parsed = messaging.parse_envelope_bytes(message.envelope_xml)
    assert parsed.user_message == um
    profile.check_peppol_user_message(parsed.user_message, [part.content_id])


def test_body_is_repeatable_and_measured(message: OutgoingMessage) -> None:
    first = b"".join(message.chunks())
    assert b"".join(message.chunks()) == first
    assert len(first) == message.content_length
    media_type, params = mime.parse_content_type(message.content_type)
    assert media_type == "multipart/related"
    assert params["type"] == "application/soap+xml" and params["boundary"] == message.boundary
    assert "start" not in params  # phase4's form: the root is the first part


def test_wire_format_checked_without_our_reader(aps: Aps, message: OutgoingMessage, sbd: bytes) -> None:
    soap, ciphertext = _parts(message)
    root = safexml.parse_bytes(soap)
    security = root.find("S12:Header/wsse:Security", NSMAP)
    wrapped = base64.b64decode(security.findtext("xenc:EncryptedKey/xenc:CipherData/xenc:CipherValue",
                                                 namespaces=NSMAP))
    session_key = aps.receiver.private_key.decrypt(
        wrapped, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    compressed = AESGCM(session_key).decrypt(ciphertext[:12], ciphertext[12:], None)
    assert gzip.decompress(compressed) == sbd
    assert compressed[4:8] == b"\0\0\0\0"  # MTIME 0, like Java
    cid_reference = root.find(f"S12:Header/wsse:Security/ds:Signature/ds:SignedInfo/"
                              f"ds:Reference[@URI='cid:{message.user_message.parts[0].content_id}']", NSMAP)
    assert base64.b64decode(cid_reference.findtext("ds:DigestValue", namespaces=NSMAP)) == \
        hashlib.sha256(compressed).digest()  # signed over the gzip bytes, before encryption
    ed = security.find("xenc:EncryptedData", NSMAP)
    assert ed.get("MimeType") == "application/gzip"
    assert ed.find("xenc:EncryptionMethod", NSMAP).get("Algorithm") == ns.AES128_GCM


def test_sent_references_cover_messaging_body_and_attachment(message: OutgoingMessage) -> None:
    um = message.user_message
    assert [r.get("URI") for r in message.sent_references] == [
        f"#{um.messaging_id}", f"#{um.body_id}", f"cid:{um.parts[0].content_id}"
    ]


def test_explicit_message_id_and_conversation(aps: Aps, sbd: bytes) -> None:
    with build_message(sbd=io.BytesIO(sbd), our_key=aps.sender, recipient_cert=aps.receiver.certificate,
                       message_id="resend-1@gw.example", conversation_id="conv-7@gw.example", now=NOW) as out:
        assert out.message_id == "resend-1@gw.example"
        assert out.user_message.conversation_id == "conv-7@gw.example"
    with pytest.raises(ValueError, match="left@right"):
        build_message(sbd=sbd, our_key=aps.sender, recipient_cert=aps.receiver.certificate, message_id="<x@y>", now=NOW)


def test_given_sbdh_and_to_party_are_used(aps: Aps, sbd: bytes, sbdh: Sbdh) -> None:
    with build_message(sbd=sbd, sbdh=sbdh, our_key=aps.sender, recipient_cert=aps.receiver.certificate,
                       to_party="POP000042", now=datetime.now(UTC)) as out:
        assert out.sbdh is sbdh
        assert out.user_message.to_party == "POP000042"


def test_invalid_sbd_is_refused_before_anything_is_built(aps: Aps, invoice: bytes) -> None:
    with pytest.raises(SbdhError):
        build_message(sbd=invoice, our_key=aps.sender, recipient_cert=aps.receiver.certificate, now=datetime.now(UTC))


def test_unseekable_stream_is_refused(aps: Aps, sbd: bytes) -> None:
    class OneWay(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

    with pytest.raises(ValueError, match="seekable"):
        build_message(sbd=OneWay(), our_key=aps.sender, recipient_cert=aps.receiver.certificate, now=datetime.now(UTC))


def test_unseekable_stream_is_fine_with_a_given_sbdh(aps: Aps, sbd: bytes, sbdh: Sbdh) -> None:
    class OneWay(io.RawIOBase):
        def __init__(self) -> None:
            self.data = io.BytesIO(sbd)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            return self.data.readinto(buffer)

    with build_message(sbd=io.BufferedReader(OneWay()), sbdh=sbdh, our_key=aps.sender,
                       recipient_cert=aps.receiver.certificate, now=NOW) as out, _open(aps, out) as inbound:
        assert inbound.payload is not None and inbound.payload.read() == sbd


def test_seal_needs_exactly_one_attachment_part(aps: Aps, sbdh: Sbdh, sbd: bytes) -> None:
    with pytest.raises(ValueError, match="exactly one attachment"):
        _sealed(aps, sbdh, sbd, parts=(PartInfo.attachment("a@cid"), PartInfo.attachment("b@cid")))


# --------------------------------------------------------------------------- inbound: accepted


def test_round_trip_and_receipt(aps: Aps, message: OutgoingMessage, sbd: bytes, sbdh: Sbdh) -> None:
    with _open(aps, message) as inbound:
        assert inbound.message_id == message.message_id
        assert inbound.user_message == message.user_message
        assert inbound.signer == aps.sender.certificate
        assert inbound.sbdh == sbdh
        assert inbound.payload is not None and inbound.payload.read() == sbd
        assert (inbound.payload_size, inbound.payload_sha256) == (len(sbd), hashlib.sha256(sbd).hexdigest())
        receipt = respond(inbound, aps.receiver, domain="receiver.example", now=datetime.now(UTC)).raw
    verdict = verify_receipt(receipt, sent_message_id=message.message_id, sent_references=message.sent_references)
    assert verdict.valid, verdict.problems
    assert verdict.signer == aps.receiver.certificate
    assert verdict.message_id.endswith("@receiver.example")


def test_participants_compare_case_insensitively(aps: Aps, sbdh: Sbdh, sbd: bytes) -> None:
    shouting = Participant("iso6523-actorid-upis", "0002:fr23342")
    with _sealed(aps, sbdh, sbd, final_recipient=shouting) as out, _open(aps, out) as inbound:
        assert inbound.user_message.final_recipient == shouting


def test_limits_match_the_configuration_keys() -> None:
    limits = InboundLimits(**load_config(environ={}).as4.model_dump())
    assert limits == InboundLimits()


def test_ping_is_accepted_without_payload(aps: Aps) -> None:
    participant = Participant("iso6523-actorid-upis", "0088:7300010000001")
    ping = messaging.new_user_message(
        domain="test.example", from_party="POP000001", to_party="POP000002", service=ns.TEST_SERVICE,
        service_type=None, action=ns.TEST_ACTION, original_sender=participant, final_recipient=participant, parts=[],
        now=NOW)
    envelope = messaging.build_user_message(ping)
    wssec.sign(envelope, aps.sender, [])
    content_type, chunks = mime.write_message(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), [])

    with open_message(chunks, content_type, our_key=aps.receiver,
                      now=NOW, check_signer=aps.check_signer) as inbound:
        assert inbound.user_message.is_ping
        assert inbound.payload is None and inbound.sbdh is None
        receipt = respond(inbound, aps.receiver, now=datetime.now(UTC)).raw
    assert messaging.parse_envelope_bytes(receipt).kind == "receipt"


def _uncompressed(aps: Aps, sbdh: Sbdh, sbd: bytes) -> tuple[str, bytes]:
    """A message whose SBD travels without gzip (allowed by ebMS, accepted by phase4): signed as XML, encrypted."""
    content_id = mime.new_content_id()
    um = user_message_for(sbdh, from_party="POP000001", to_party="POP000002", content_id=content_id,
                          domain="test.example", now=datetime.now(UTC))
    um = dataclasses.replace(um, parts=(PartInfo.attachment(content_id, compression_type=None),))
    envelope = messaging.build_user_message(um)
    wssec.sign(envelope, aps.sender, [wssec.AttachmentContent(content_id, "application/xml", lambda: io.BytesIO(sbd))])
    [encrypted] = encrypt_attachments(messaging.security_header(envelope), aps.receiver.certificate,
                                      [PlainAttachment(content_id, "application/xml", io.BytesIO(sbd))])
    content_type, chunks = mime.write_message(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
                                              [mime.OutgoingAttachment(content_id, encrypted.body)])
    return content_type, b"".join(chunks)


def test_uncompressed_payload_is_accepted(aps: Aps, sbdh: Sbdh, sbd: bytes) -> None:
    content_type, body = _uncompressed(aps, sbdh, sbd)
    with open_message(body, content_type, our_key=aps.receiver, now=NOW, check_signer=aps.check_signer) as inbound:
        assert inbound.payload is not None and inbound.payload.read() == sbd
        assert inbound.payload_sha256 == hashlib.sha256(sbd).hexdigest()


def test_uncompressed_payload_over_the_limit_is_refused(aps: Aps, sbdh: Sbdh, sbd: bytes) -> None:
    content_type, body = _uncompressed(aps, sbdh, sbd)
    with pytest.raises(InboundRefusal) as refused:
        open_message(body, content_type, our_key=aps.receiver, now=NOW, check_signer=aps.check_signer,
                     limits=InboundLimits(max_payload_bytes=len(sbd) - 1))
    assert refused.value.code == "EBMS:0004"
    assert "limit" in refused.value.description


# --------------------------------------------------------------------------- inbound: refused


def test_untrusted_signer_is_ebms_0101(aps: Aps, message: OutgoingMessage) -> None:
    with pytest.raises(InboundRefusal) as refused:
        open_message(message.chunks(), message.content_type, our_key=aps.receiver,
                     now=NOW,
                     check_signer=lambda c: CertificateValidator(aps.pki.anchors()).validate(c, Purpose.SMP_SIGNING))
    assert refused.value.code == "EBMS:0101"
    assert refused.value.message_id == message.message_id
    assert "POP000001" in refused.value.description


def test_from_party_must_be_the_signer(aps: Aps, sbdh: Sbdh, sbd: bytes) -> None:
    # POP000003 is a valid AP, but the header claims the message comes from POP000001.
    with _sealed(aps, sbdh, sbd, signer=aps.impostor) as out:
        refusal = _refusal(aps, out)
    assert refusal.code == "EBMS:0101"
    assert "POP000001" in refusal.description and "POP000003" in refusal.description


def test_message_for_another_ap_is_ebms_0102(aps: Aps, message: OutgoingMessage) -> None:
    assert _refusal(aps, message, key=aps.impostor).code == "EBMS:0102"


def test_tampered_ciphertext_is_ebms_0102(aps: Aps, message: OutgoingMessage) -> None:
    body = bytearray(b"".join(message.chunks()))
    body[-len(f"\r\n--{message.boundary}--\r\n") - 20] ^= 0x01  # a byte inside the GCM ciphertext
    assert _refusal(aps, message, body=bytes(body)).code == "EBMS:0102"


def test_tampered_header_is_ebms_0101(aps: Aps, message: OutgoingMessage) -> None:
    conversation = message.user_message.conversation_id.encode()
    body = b"".join(message.chunks()).replace(conversation, b"x" + conversation[1:])
    refusal = _refusal(aps, message, body=body)
    assert refusal.code == "EBMS:0101"
    assert "Messaging" in refusal.description or "digest" in refusal.description.lower()


def test_unencrypted_attachment_is_ebms_0102(aps: Aps, sbdh: Sbdh, sbd: bytes) -> None:
    content_id = mime.new_content_id()
    um = user_message_for(sbdh, from_party="POP000001", to_party="POP000002", content_id=content_id,
                          domain="test.example", now=datetime.now(UTC))
    envelope = messaging.build_user_message(um)
    compressed = gzip.compress(sbd, mtime=0)
    wssec.sign(envelope, aps.sender, [wssec.AttachmentContent(content_id, "application/gzip",
                                                              lambda: io.BytesIO(compressed))])
    content_type, chunks = mime.write_message(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
                                              [mime.OutgoingAttachment(content_id, compressed)])
    with pytest.raises(InboundRefusal) as refused:
        open_message(chunks, content_type, our_key=aps.receiver, now=NOW, check_signer=aps.check_signer)
    assert refused.value.code == "EBMS:0102"
    assert content_id in refused.value.description


def test_payload_over_the_limit_is_ebms_0303(aps: Aps, message: OutgoingMessage, sbd: bytes) -> None:
    refusal = _refusal(aps, message, limits=InboundLimits(max_payload_bytes=len(sbd) - 1))
    assert refusal.code == "EBMS:0303"


def test_gzip_bomb_is_ebms_0303(aps: Aps, sbdh: Sbdh) -> None:
    bomb = b"<x>" + b"\0" * (8 << 20)  # 8 MiB of zeros gzip to ~8 KiB: a ratio near 1000
    with _sealed(aps, sbdh, bomb) as out:
        refusal = _refusal(aps, out, limits=InboundLimits(max_compression_ratio=100))
    assert refusal.code == "EBMS:0303"
    assert "expands" in refusal.description


def test_payload_that_is_no_sbd_is_ebms_0004(aps: Aps, sbdh: Sbdh, invoice: bytes) -> None:
    with _sealed(aps, sbdh, invoice) as out:
        refusal = _refusal(aps, out)
    assert refusal.code == "EBMS:0004"
    assert "SBD" in refusal.description


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"original_sender": Participant("iso6523-actorid-upis", "0088:7300010000001")}, "originalSender"),
        ({"final_recipient": Participant("iso6523-actorid-upis", "0002:FR99999")}, "finalRecipient"),
        ({"final_recipient": Participant("other-actorid-upis", "0002:FR23342")}, "finalRecipient"),
        ({"action": "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote"
                    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"},
         "eb:Action"),
        ({"service": "urn:fdc:peppol.eu:2017:poacc:selfbilling:01:1.0"}, "eb:Service"),
        ({"service_type": "other-procid"}, "eb:Service"),
    ],
)
def test_header_disagreeing_with_the_sbdh_is_ebms_0004(aps: Aps, sbdh: Sbdh, sbd: bytes, changes: dict,
                                                        named: str) -> None:
    with _sealed(aps, sbdh, sbd, **changes) as out:
        refusal = _refusal(aps, out)
    assert refusal.code == "EBMS:0004"
    assert named in refusal.description
    assert refusal.message_id == out.message_id


def test_cross_check_accepts_what_build_derives(sbdh: Sbdh) -> None:
    um = user_message_for(sbdh, from_party="POP000001", to_party="POP000002", content_id="a@cid", domain="x.example",
                          now=NOW)
    cross_check(um, sbdh)
    other = dataclasses.replace(sbdh, process=ProcessId("cenbii-procid-ubl", "urn:other"),
                                sender=ParticipantId.parse("0088:7300010000001"))
    with pytest.raises(As4Error, match="originalSender"):
        cross_check(um, other)


def test_signal_posted_as_a_request_is_ebms_0010(aps: Aps, message: OutgoingMessage) -> None:
    with _open(aps, message) as inbound:
        receipt = respond(inbound, aps.receiver, now=datetime.now(UTC)).raw
    with pytest.raises(InboundRefusal) as refused:
        open_message(receipt, "application/soap+xml;charset=UTF-8", our_key=aps.receiver,
                     now=NOW, check_signer=aps.check_signer)
    assert refused.value.code == "EBMS:0010"


def test_unreadable_mime_is_http_400_without_message_id(aps: Aps) -> None:
    with pytest.raises(InboundRefusal) as refused:
        open_message(b"hello", None, our_key=aps.receiver, now=NOW, check_signer=aps.check_signer)
    assert refused.value.code == "EBMS:0007"
    assert refused.value.http_status == 400 and refused.value.message_id is None


# --------------------------------------------------------------------------- error signals


def test_error_response_is_signed_and_refers_to_the_message(aps: Aps, message: OutgoingMessage) -> None:
    refusal = _refusal(aps, message, key=aps.impostor)
    signal = error_response(refusal, refusal.message_id, aps.receiver, domain="receiver.example",
                            now=datetime.now(UTC))

    parsed = messaging.parse_envelope_bytes(signal)
    assert parsed.kind == "error" and parsed.error is not None
    assert parsed.error.codes == ("EBMS:0102",)
    assert parsed.error.ref_to_message_id == message.message_id
    [error] = parsed.error.errors
    assert error.ref_to_message_in_error == message.message_id and error.description == refusal.description
    report = wssec.verify(parsed.envelope, {})
    assert report.valid, report.problems
    assert report.signer == aps.receiver.certificate


def test_error_response_without_message_id(aps: Aps) -> None:
    with pytest.raises(InboundRefusal) as refused:
        open_message(b"", "multipart/related", our_key=aps.receiver, now=NOW, check_signer=aps.check_signer)
    signal = error_response(refused.value, refused.value.message_id, aps.receiver, now=datetime.now(UTC))
    parsed = messaging.parse_envelope_bytes(signal)
    assert parsed.error is not None and parsed.error.ref_to_message_id is None
    assert parsed.error.codes == ("EBMS:0007",)


def test_not_serviced_error_carries_the_peppol_detail(aps: Aps) -> None:
    signal = error_response(As4Error(OTHER, "we do not serve 0002:FR23342", detail=NOT_SERVICED), "m-1@x.example",
                            aps.receiver, now=datetime.now(UTC))
    parsed = messaging.parse_envelope_bytes(signal)
    assert parsed.error is not None and parsed.error.has_detail(NOT_SERVICED)


def test_decryption_of_our_message_with_the_encryption_module(aps: Aps, message: OutgoingMessage, sbd: bytes) -> None:
    soap, ciphertext = _parts(message)
    envelope = safexml.parse_bytes(soap)
    content_id = message.user_message.parts[0].content_id
    decrypted = decrypt_attachments(envelope, aps.receiver, {content_id: io.BytesIO(ciphertext)})
    assert gzip.decompress(decrypted[content_id].body.read()) == sbd


# --------------------------------------------------------------------------- tampering, property-based


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.floats(min_value=0, max_value=1, exclude_max=True), bit=st.integers(min_value=0, max_value=7))
def test_no_single_bit_flip_is_accepted_as_a_different_message(
    aps: Aps, message: OutgoingMessage, sbd: bytes, position: float, bit: int
) -> None:
    """Flipping any bit of the request either gets it refused, or (in unsigned, non-payload bytes such as an Id of
    the KeyInfo) changes nothing we hand on: never a different payload or a different eb:UserMessage."""
    body = bytearray(b"".join(message.chunks()))
    body[int(position * len(body))] ^= 1 << bit
    try:
        inbound = _open(aps, message, body=bytes(body))
    except InboundRefusal as refusal:
        assert refusal.code.startswith("EBMS:")
        return
    with inbound:
        assert inbound.payload is not None and inbound.payload.read() == sbd
        assert inbound.user_message == message.user_message
        assert inbound.signer == aps.sender.certificate


def _version_5(der: bytes) -> bytes:
    """The certificate with its X.509 version field set to an unknown value (cryptography: InvalidVersion)."""
    at = der.index(b"\xa0\x03\x02\x01\x02") + 4
    return der[:at] + b"\x05" + der[at + 1:]


def _broken_issuer(der: bytes) -> bytes:
    """The certificate with the issuer CN's string tag made a BOOLEAN: it loads, and fails when the issuer is read."""
    at = der.index(b"LOCAL DEV PEPPOL ACCESS POINT CA") - 2
    return der[:at] + b"\x01" + der[at + 1:]


@pytest.mark.parametrize("damage", [_version_5, _broken_issuer])
@pytest.mark.parametrize(("whose", "code"), [("sender", "EBMS:0101"), ("receiver", "EBMS:0102")])
def test_damaged_certificate_tokens_are_refused_not_crashed_on(
    aps: Aps, message: OutgoingMessage, damage, whose: str, code: str
) -> None:
    # The BSTs are not signed, so anyone on the path can swap them; a token we cannot read is a refusal.
    certificate = (aps.sender if whose == "sender" else aps.receiver).certificate
    der = certificate.public_bytes(serialization.Encoding.DER)
    body = b"".join(message.chunks())
    assert body.count(base64.b64encode(der)) == 1
    damaged = body.replace(base64.b64encode(der), base64.b64encode(damage(der)))
    assert _refusal(aps, message, body=damaged).code == code


# --------------------------------------------------------------------------- the phase4 vectors (INDEX.md verdicts)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # "Must be rejected before any crypto. phase4 answers EBMS:0101" (its Body is not empty, too).
        ("um-unknown-signature-algorithm.xml", "EBMS:0101"),
        # "phase4 answers EBMS:0003 ValueInconsistent (CompressionType ... not supported)".
        ("um-unsupported-compressiontype.mime", "EBMS:0003"),
        # Encrypted for a POP000306 G2 certificate whose key is not public: "cannot decrypt -> EBMS:0102".
        ("um-phase4-peppol-signed-encrypted.mime", "EBMS:0102"),
    ],
)
def test_phase4_vectors_get_phase4s_answer(vectors: Path, name: str, code: str) -> None:
    keys = vectors / "as4" / "keys"
    key = load_pem(keys / "dummy-ph-as4.key.pem", keys / "dummy-ph-as4.cert.pem")
    with (vectors / "as4" / "messages" / name).open("rb") as dump:
        if name.endswith(".mime"):
            headers, stream = mime.read_http_dump(dump)
            body, content_type = stream.read(), headers["content-type"]
        else:
            body, content_type = dump.read(), "application/soap+xml;charset=UTF-8"
        with pytest.raises(InboundRefusal) as refused:
            open_message(body, content_type, our_key=key, now=NOW, check_signer=lambda c: pytest.fail("not reached"))
    assert refused.value.code == code, refused.value.description
    assert refused.value.message_id  # every one of them has a readable MessageId for the error signal
