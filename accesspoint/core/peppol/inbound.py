"""Opening an incoming Peppol AS4 UserMessage, and answering it (DESIGN.md, inbound step 1 and the answer of 4).

`open_message` runs the step list of `steps.INBOUND_STEPS` (MIME, SOAP, signature policy, envelope, Peppol profile,
decryption, signature, wsu:Timestamp, signer certificate, eb:From, payload, SBDH, cross-check) and stops at the first
failure: an `InboundRefusal` carrying the ebMS code we answer with. `error_response` turns it into a signed ebMS Error
signal; `respond` acknowledges a good message with a signed non-repudiation receipt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import IO, BinaryIO

from cryptography import x509
from lxml import etree

from accesspoint.core.as4 import messaging, wssec
from accesspoint.core.as4.errors import As4Error
from accesspoint.core.as4.messaging import UserMessage
from accesspoint.core.as4.receipts import nri_reference_mismatch, sign_receipt
from accesspoint.core.peppol.steps import INBOUND_STEPS, InboundLimits, Opening, SignerCheck, run_steps
from accesspoint.core.sbdh import DocumentSpan, Sbdh
from base.chunks import chunk_stream
from certs.keystore import KeyMaterial


@dataclass
class InboundMessage:
    """A verified and decrypted UserMessage. `payload` is the decompressed SBD, rewound, and `document` where its
    business document lies (both None for an ebMS ping); close the message (or use it as a context manager) to
    remove the spooled files."""

    envelope: etree._Element
    user_message: UserMessage
    signature: wssec.SignatureReport
    signer: x509.Certificate
    payload: BinaryIO | None
    payload_size: int
    payload_sha256: str | None
    sbdh: Sbdh | None
    document: DocumentSpan | None
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


def open_message(
    body: bytes | Iterable[bytes],
    content_type: str | None,
    *,
    our_key: KeyMaterial,
    check_signer: SignerCheck,
    now: datetime,
    limits: InboundLimits | None = None,
) -> InboundMessage:
    """Parse, decrypt, verify and unpack one AS4 request body; raises InboundRefusal for anything we must refuse.

    `body` is the HTTP request body (de-chunked) as byte chunks, `content_type` its Content-Type header.
    `check_signer` judges the signing certificate, e.g. `lambda c: validator.validate(c, Purpose.AP_SIGNING, now)`;
    `now` is the time a wsu:Timestamp in the security header is judged at.
    """
    opening = Opening(chunk_stream(body), content_type, [our_key], check_signer, limits or InboundLimits(), now)
    try:
        run_steps(INBOUND_STEPS, opening, stop_at_failure=True)
    except As4Error as exc:
        opening.close()
        raise InboundRefusal(exc, opening.message_id) from exc
    except BaseException:
        opening.close()
        raise
    o = opening
    assert o.root is not None and o.user_message is not None and o.signature is not None and o.signer is not None
    return InboundMessage(o.root, o.user_message, o.signature, o.signer, o.payload, o.payload_size or 0,
                          o.payload_sha256, o.sbdh, o.document, o.spooled)


@dataclass(frozen=True)
class SignedReceipt:
    message_id: str  # the receipt's own eb:MessageId
    raw: bytes  # exactly the bytes we send and store


def respond(inbound: InboundMessage, our_key: KeyMaterial, *, now: datetime,
            domain: str = messaging.DEFAULT_MESSAGE_ID_DOMAIN) -> SignedReceipt:
    """The signed non-repudiation receipt for a message `open_message` accepted (and that we store durably)."""
    receipt_id = messaging.new_message_id(domain)
    raw = sign_receipt(inbound.signature.signed_info_references, inbound.message_id, our_key, now=now,
                       message_id=receipt_id, domain=domain)
    return SignedReceipt(receipt_id, raw)


def repeat_difference(receipt: bytes, inbound: InboundMessage) -> str | None:
    """Why `inbound` is not the message our stored `receipt` acknowledges, or None when its signature covers the
    same content (the NRI of a receipt lists the signed ds:References of the message it acknowledges)."""
    parsed = messaging.parse_envelope_bytes(receipt)
    if parsed.receipt is None:
        return "what we stored for the message we accepted under it is no receipt"
    accepted = parsed.receipt.nri_references
    received = inbound.signature.signed_info_references
    if len(accepted) != len(received):
        return f"its signature covers {len(received)} parts, the accepted message's covered {len(accepted)}"
    for ours, theirs in zip(accepted, received, strict=True):
        mismatch = nri_reference_mismatch(theirs, ours)
        if mismatch is not None:
            return f"its signed content differs ({mismatch})"
    return None


def error_response(exc: As4Error, ref_to_message_id: str | None, our_key: KeyMaterial, *, now: datetime,
                   domain: str = messaging.DEFAULT_MESSAGE_ID_DOMAIN) -> bytes:
    """A signed ebMS Error signal for a refused message (phase4 signs its errors too; as4.md section 4).

    `ref_to_message_id` is the MessageId of the refused message when it could be read, else None
    (`InboundRefusal.message_id`).
    """
    envelope = messaging.build_error([exc], ref_to_message_id, timestamp=now, domain=domain)
    wssec.sign(envelope, our_key, [])
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
