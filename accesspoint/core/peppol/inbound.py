"""Opening an incoming Peppol AS4 UserMessage, and answering it: the inbound flow steps 1-5 of DESIGN.md.

`open_message` reads top to bottom:
MIME -> eb:Messaging + Peppol profile checks -> decrypt (every attachment must be encrypted) -> verify the signature
(it must cover eb:Messaging, the Body and every attachment) -> judge the signer certificate (a callback, so the
pipeline and `inspect` bring their own trust) -> eb:From must be the signer's seat ID -> bounded gunzip -> SBDH ->
cross-check the SBDH against the ebMS header. Every failure is an As4Error carrying the ebMS code we answer with;
`error_response` turns it into a signed ebMS Error signal, `respond` acknowledges a good message with a signed
non-repudiation receipt.

Error codes follow phase4 (shared/docs/as4.md sections 4 and 5) where it has one: an untrusted or mismatching
signer is EBMS:0101, an unencrypted attachment EBMS:0102 (phase4's "message must have been decrypted"), gunzip
failures EBMS:0303, an invalid SBDH or an SBDH that disagrees with originalSender/finalRecipient EBMS:0004. phase4
does not compare Action/Service with the SBDH DOCUMENTID/PROCESSID (as4.md section 5, "Not checked by phase4");
we do, and answer a mismatch with EBMS:0004 like the other SBDH consistency failures.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, BinaryIO, Protocol, cast

from cryptography import x509
from lxml import etree

from accesspoint.core.as4 import messaging, mime, ns, spool, wssec
from accesspoint.core.as4.compression import gunzip_bounded
from accesspoint.core.as4.encryption import DecryptedAttachment, decrypt_attachments
from accesspoint.core.as4.errors import (
    FAILED_AUTHENTICATION,
    FAILED_DECRYPTION,
    INVALID_HEADER,
    OTHER,
    PMODE_MISMATCH,
    As4Error,
)
from accesspoint.core.as4.messaging import COMPRESSION_GZIP, Participant, UserMessage
from accesspoint.core.as4.receipts import sign_receipt
from accesspoint.core.peppol import profile
from accesspoint.core.sbdh import Sbdh, SbdhError, parse_sbdh
from base import safexml
from certs.keystore import KeyMaterial
from certs.names import common_names
from smp.identifiers import ParticipantId

COPY_CHUNK = 64 << 10
# Where a UserMessage's MessageId is, read before the header is validated so that even an early refusal names it.
_MESSAGE_ID_PATH = "/".join(f"{{{namespace}}}{local}" for namespace, local in (
    (ns.S12, "Header"), (ns.EB, "Messaging"), (ns.EB, "UserMessage"), (ns.EB, "MessageInfo"), (ns.EB, "MessageId")))


class SignerVerdict(Protocol):
    """What `check_signer` answers; certs.validation.Verdict has this shape."""

    @property
    def valid(self) -> bool: ...

    @property
    def detail(self) -> str: ...


SignerCheck = Callable[[x509.Certificate], SignerVerdict]


@dataclass(frozen=True)
class InboundLimits:
    """Bounds on what one message may cost us. Field names are the keys of the [as4] configuration section, so
    `InboundLimits(**vars(config.as4))` works; the defaults are those of conf/default.toml."""

    max_message_bytes: int = 200 << 20
    spill_threshold_bytes: int = 1 << 20
    max_payload_bytes: int = 200 << 20
    max_compression_ratio: float = 200
    # The SOAP part is parsed in memory (lxml tree + signature canonicalisation), unlike the attachments, which
    # are streamed; a real Peppol header is a few kB, so this cap only ever stops abuse.
    max_header_bytes: int = 4 << 20


@dataclass
class InboundMessage:
    """A verified and decrypted UserMessage. `payload` is the decompressed SBD, rewound (None for an ebMS ping);
    close the message (or use it as a context manager) to remove the spooled files."""

    envelope: etree._Element
    user_message: UserMessage
    signature: wssec.SignatureReport
    signer: x509.Certificate
    payload: BinaryIO | None
    payload_size: int
    payload_sha256: str | None
    sbdh: Sbdh | None
    _spooled: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def message_id(self) -> str:
        return self.user_message.message_id

    def close(self) -> None:
        for spooled in self._spooled:
            spooled.close()

    def __enter__(self) -> InboundMessage:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class InboundRefusal(As4Error):
    """The As4Error that `open_message` raises: the same code and texts, plus the MessageId of the refused message
    when its eb:Messaging could be read (None before that), which the ebMS Error signal must refer to."""

    def __init__(self, cause: As4Error, message_id: str | None) -> None:
        super().__init__(cause.code, cause.description, cause.detail, cause.http_status)
        self.message_id = message_id


def check_header_size(root: mime.Part, max_header_bytes: int) -> None:
    """Refuse a SOAP part above the cap before it is read into memory (the MIME reader spooled it already)."""
    if root.size > max_header_bytes:
        raise As4Error(INVALID_HEADER, f"the SOAP part has {root.size} bytes, more than this access point accepts "
                                       f"for the SOAP envelope ({max_header_bytes} bytes)", http_status=413)


def _parse_xml(root: mime.Part) -> etree._Element:
    try:
        return safexml.parse_bytes(root.read_bytes())
    except safexml.XmlError as exc:
        raise As4Error(INVALID_HEADER, f"the SOAP part is not acceptable XML: {exc}", http_status=400) from None


def _signature_policy(envelope: etree._Element) -> None:
    """Refuse a signature we would not even try to verify (unknown algorithms, key not referenced as a BST,
    ambiguous Ids) before reading the ebMS header, as phase4/WSS4J do: vectors/as4/messages/
    um-unknown-signature-algorithm.xml gets EBMS:0101 from phase4 although its Body is not empty (EBMS:0003 for us
    otherwise). A missing signature is left to the full check after decryption, where phase4 reports it too."""
    _, header, _ = wssec.soap_parts(envelope)
    if header is None or header.find(f"{{{ns.WSSE}}}Security/{{{ns.DS}}}Signature") is None:
        return
    report = wssec.verify(envelope, {}, require=wssec.RequiredCoverage(messaging=False, body=False))
    if report.signer is None and report.error is not None:
        raise report.error


def _user_message_of(envelope: etree._Element) -> messaging.ParsedEnvelope:
    parsed = messaging.parse_envelope(envelope)
    if parsed.kind != "user-message" or parsed.user_message is None:
        # Peppol is one-way push with synchronous signals, so a receipt or error never arrives as a request. phase4
        # (which also serves asynchronous profiles) answers such a request with an empty 204; we answer with an
        # error, because for a Peppol sender it is a bug it should hear about.
        raise As4Error(PMODE_MISMATCH, f"the request carries an ebMS {parsed.kind} signal; this endpoint accepts "
                                       "only Peppol UserMessages (receipts and errors come back on the response)")
    return parsed


def _decrypt(envelope: etree._Element, attachments: list[mime.Part], our_key: KeyMaterial,
             limits: InboundLimits) -> dict[str, DecryptedAttachment]:
    # The encryption module judges the encryption header first, so a damaged one gets the code it gives (the same
    # as `inspect` reports); only then is an attachment that no EncryptedData covers refused.
    decrypted = decrypt_attachments(envelope, our_key, {part.content_id or "": part.open() for part in attachments},
                                    spill_threshold=limits.spill_threshold_bytes)
    plain = [part.content_id or "" for part in attachments if (part.content_id or "") not in decrypted]
    if plain:
        for item in decrypted.values():
            item.body.close()
        listed = ", ".join(f"<{cid}>" for cid in plain)
        raise As4Error(FAILED_DECRYPTION, f"attachment {listed} is not encrypted; Peppol requires every payload to "
                                          "be encrypted for the receiving access point")
    return decrypted


def _verify(envelope: etree._Element, decrypted: dict[str, DecryptedAttachment]) -> wssec.SignatureReport:
    contents = {
        cid: wssec.AttachmentContent(cid, item.mime_type, lambda body=item.body: spool.reader(body))
        for cid, item in decrypted.items()
    }
    report = wssec.verify(envelope, contents, require=wssec.RequiredCoverage(attachment_content_ids=list(contents)))
    report.raise_for_error()
    if report.signer is None:
        raise As4Error(FAILED_AUTHENTICATION, "the signature names no signing certificate")
    return report


def _check_signer(report: wssec.SignatureReport, user_message: UserMessage, check_signer: SignerCheck) -> None:
    signer = report.signer
    assert signer is not None
    verdict = check_signer(signer)
    if not verdict.valid:
        raise As4Error(FAILED_AUTHENTICATION, f"the signing certificate {signer.subject.rfc4514_string()} is not "
                                              f"accepted: {verdict.detail}")
    # CEF 1.5.3.3: the sending AP is the one that signed; phase4 leaves this open (as4.md pitfall 20).
    if common_names(signer.subject) != [user_message.from_party]:
        raise As4Error(FAILED_AUTHENTICATION, f"eb:From/eb:PartyId is {user_message.from_party!r}, but the message "
                                              f"is signed by {signer.subject.rfc4514_string()}; the PartyId must be "
                                              "the CN (seat ID) of the signing certificate")


class HashingWriter(io.RawIOBase):
    """Write-through to a file while taking the SHA-256 and the size of what passes, so the payload digest costs
    no second read (the receiver and `inspect` both write the payload through it)."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]  # bytes in, like every BinaryIO writer
        self.digest.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def _decompress(user_message: UserMessage, first: DecryptedAttachment, limits: InboundLimits,
                spooled: list[IO[bytes]]) -> tuple[BinaryIO, int, str]:
    payload = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=limits.spill_threshold_bytes))
    spooled.append(payload)
    sink = HashingWriter(payload)
    with spool.reader(first.body) as source:
        if user_message.parts[0].compression_type == COMPRESSION_GZIP:
            size = gunzip_bounded(source, cast(BinaryIO, sink), max_bytes=limits.max_payload_bytes,
                                  max_ratio=limits.max_compression_ratio, compressed_size=first.size)
        else:
            # Compression is optional in ebMS and phase4 accepts plain payloads; the size bound still applies.
            if first.size > limits.max_payload_bytes:
                raise As4Error(OTHER, f"the payload has {first.size} bytes, more than the limit of "
                                      f"{limits.max_payload_bytes}")
            size = 0
            while chunk := source.read(COPY_CHUNK):
                size += sink.write(chunk)
    return payload, size, sink.digest.hexdigest()


def _same_participant(header: Participant | None, sbdh: ParticipantId) -> bool:
    # Peppol identifier values are case-insensitive under iso6523-actorid-upis (peppol-commons lower-cases them).
    if header is None or header.scheme is None:
        return False
    return header.scheme.lower() == sbdh.scheme.lower() and header.value.lower() == sbdh.value.lower()


def cross_check(user_message: UserMessage, sbdh: Sbdh) -> None:
    """The SBDH must say what the ebMS header says: participants, document type and process (EBMS:0004)."""
    for name, header, envelope in (("originalSender", user_message.original_sender, sbdh.sender),
                                   ("finalRecipient", user_message.final_recipient, sbdh.receiver)):
        if not _same_participant(header, envelope):
            raise As4Error(OTHER, f"the {name} property names {header!s} but the SBDH names {envelope.uri}; "
                                  "they must be the same participant")
    action = f"{sbdh.document_type.scheme}::{sbdh.document_type.value}"
    if user_message.action != action:
        raise As4Error(OTHER, f"eb:Action is {user_message.action!r} but the SBDH DOCUMENTID is {action!r}; the "
                              "Action must be the document type identifier of the SBDH")
    if (user_message.service_type, user_message.service) != (sbdh.process.scheme, sbdh.process.value):
        raise As4Error(OTHER, f"eb:Service is {user_message.service!r} (type {user_message.service_type!r}) but the "
                              f"SBDH PROCESSID is {sbdh.process.value!r} (scheme {sbdh.process.scheme!r}); they "
                              "must be the same process")


def open_message(
    stream: BinaryIO,
    content_type: str | None,
    *,
    our_key: KeyMaterial,
    check_signer: SignerCheck,
    limits: InboundLimits | None = None,
) -> InboundMessage:
    """Parse, decrypt, verify and unpack one AS4 request body; raises InboundRefusal for anything we must refuse.

    `stream` is the HTTP request body (de-chunked), `content_type` its Content-Type header. `check_signer` judges
    the signing certificate, e.g. `lambda c: validator.validate(c, Purpose.AP_SIGNING)`.
    """
    limits = limits or InboundLimits()
    message_id: str | None = None
    spooled: list[IO[bytes]] = []
    try:
        message = mime.parse_message(stream, content_type, spill_threshold=limits.spill_threshold_bytes,
                                     max_total=limits.max_message_bytes)
        spooled += [message.root.body, *(part.body for part in message.attachments)]
        check_header_size(message.root, limits.max_header_bytes)
        envelope = _parse_xml(message.root)
        message_id = envelope.findtext(_MESSAGE_ID_PATH) or None
        _signature_policy(envelope)
        parsed = _user_message_of(envelope)
        user_message = parsed.user_message
        assert user_message is not None
        message_id = user_message.message_id
        profile.check_peppol_user_message(user_message, [part.content_id or "" for part in message.attachments])
        # check_peppol_user_message lets only an ebMS ping come without attachments: nothing to decrypt then.
        decrypted = _decrypt(parsed.envelope, message.attachments, our_key, limits) if message.attachments else {}
        spooled += [item.body for item in decrypted.values()]
        report = _verify(parsed.envelope, decrypted)
        _check_signer(report, user_message, check_signer)
        signer = report.signer
        assert signer is not None
        if user_message.is_ping:
            # phase4 answers a ping with a receipt but hands nothing to the business side; any attachment is ignored.
            return InboundMessage(parsed.envelope, user_message, report, signer, None, 0, None, None, spooled)
        first = decrypted[message.attachments[0].content_id or ""]
        payload, size, digest = _decompress(user_message, first, limits, spooled)
        try:
            sbdh = parse_sbdh(spool.reader(payload))
        except SbdhError as exc:
            raise As4Error(OTHER, f"the first attachment is not a valid Peppol SBD ({exc.code}): {exc}") from None
        cross_check(user_message, sbdh)
        payload.seek(0)  # views share the file position; hand the payload out rewound
        return InboundMessage(parsed.envelope, user_message, report, signer, payload, size, digest, sbdh, spooled)
    except As4Error as exc:
        for item in spooled:
            item.close()
        raise InboundRefusal(exc, message_id) from exc
    except BaseException:
        for item in spooled:
            item.close()
        raise


def respond(inbound: InboundMessage, our_key: KeyMaterial, *,
            domain: str = messaging.DEFAULT_MESSAGE_ID_DOMAIN) -> bytes:
    """The signed non-repudiation receipt for a message `open_message` accepted (and that we stored durably)."""
    return sign_receipt(inbound.signature.signed_info_references, inbound.message_id, our_key, domain=domain)


def error_response(exc: As4Error, ref_to_message_id: str | None, our_key: KeyMaterial, *,
                   domain: str = messaging.DEFAULT_MESSAGE_ID_DOMAIN) -> bytes:
    """A signed ebMS Error signal for a refused message (phase4 signs its errors too; as4.md section 4).

    `ref_to_message_id` is the MessageId of the refused message when it could be read, else None
    (`InboundRefusal.message_id`).
    """
    envelope = messaging.build_error([exc], ref_to_message_id, domain=domain)
    wssec.sign(envelope, our_key, [])
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
