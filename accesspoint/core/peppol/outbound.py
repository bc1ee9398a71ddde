"""Composition of an outgoing Peppol AS4 UserMessage: SBD -> gzip -> sign -> encrypt -> MIME. No HTTP here.

The order is the one CEF and phase4 use (shared/docs/as4.md section 3): the attachment digest is taken over the
gzip bytes, then those bytes are encrypted for the receiver's certificate, then the signed envelope is serialised
exactly once and packed with the ciphertext as multipart/related. The eb:Messaging header is derived from the
SBDH of the document, so header and envelope cannot disagree (the receiver cross-checks them).

The result keeps the ciphertext in a spooled temporary file and can produce the identical HTTP body as often as
needed, so a retry after a transport failure resends the same MessageId with the same bytes (as4.md pitfall 16).
Checking the receiver's certificate (it must come from a verified SMP answer and chain to the Peppol AP CA) is the
caller's job, before calling `build_message`.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import BinaryIO

from cryptography import x509
from lxml import etree

from accesspoint.core.as4 import messaging, mime, spool
from accesspoint.core.as4.compression import gzip_stream
from accesspoint.core.as4.encryption import EncryptedAttachment, PlainAttachment, encrypt_attachments
from accesspoint.core.as4.messaging import Participant, PartInfo, UserMessage
from accesspoint.core.as4.wssec import AttachmentContent, sign
from accesspoint.core.sbdh import Sbdh, parse_sbdh
from certs.keystore import KeyMaterial
from certs.names import common_names

# The SBD is XML before compression; after compression the attachment (and what the signature digests) is gzip.
SBD_MIME_TYPE = "application/xml"
GZIP_MIME_TYPE = "application/gzip"


@dataclass
class OutgoingMessage:
    """A built UserMessage, ready to POST. Close it (or use it as a context manager) to drop the spooled ciphertext.

    `sent_references` are the ds:Reference elements we signed (Messaging, Body, the attachment): keep them to
    check the receipt's non-repudiation information with `receipts.verify_receipt`. `envelope_xml` is the SOAP part
    exactly as sent, for the evidence store.
    """

    message_id: str
    user_message: UserMessage
    sbdh: Sbdh
    content_type: str
    envelope_xml: bytes
    sent_references: list[etree._Element]
    boundary: str
    attachments: list[EncryptedAttachment] = field(repr=False)

    @property
    def content_length(self) -> int:
        """Length of the body `chunks()` yields, for a Content-Length header instead of chunked encoding."""
        # The body is the MIME framing and envelope plus each ciphertext; measure without reading the ciphertexts.
        _, framing = mime.write_message(
            self.envelope_xml,
            [mime.OutgoingAttachment(a.content_id, b"") for a in self.attachments],
            boundary=self.boundary,
        )
        return sum(len(chunk) for chunk in framing) + sum(a.size for a in self.attachments)

    def chunks(self) -> Iterator[bytes]:
        """The HTTP body, streamed; every call yields the same bytes (the ciphertext is re-read from the start).

        The ciphertext is checked for the MIME boundary while it streams: mime.BoundaryCollisionError (a chance
        below 2^-98 per message) means build the message again.
        """
        for attachment in self.attachments:
            attachment.body.seek(0)
        _, body = mime.write_message(
            self.envelope_xml,
            [mime.OutgoingAttachment(a.content_id, a.body) for a in self.attachments],
            boundary=self.boundary,
        )
        return body

    def close(self) -> None:
        for attachment in self.attachments:
            attachment.body.close()

    def __enter__(self) -> OutgoingMessage:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _common_name(certificate: x509.Certificate) -> str:
    names = common_names(certificate.subject)
    if len(names) != 1:
        raise ValueError(f"certificate {certificate.subject.rfc4514_string()} has {len(names)} CNs; a Peppol AP "
                         "certificate has exactly one, its seat ID")
    return names[0]


def _stream(sbd: bytes | BinaryIO) -> BinaryIO:
    return io.BytesIO(bytes(sbd)) if isinstance(sbd, bytes | bytearray | memoryview) else sbd


def user_message_for(sbdh: Sbdh, *, from_party: str, to_party: str, content_id: str, domain: str, now: datetime,
                     conversation_id: str | None = None) -> UserMessage:
    """The eb:UserMessage that carries an SBD with this header (as4.md section 2)."""
    return messaging.new_user_message(
        domain=domain,
        from_party=from_party,
        to_party=to_party,
        service=sbdh.process.value,
        service_type=sbdh.process.scheme,
        action=f"{sbdh.document_type.scheme}::{sbdh.document_type.value}",
        original_sender=Participant(sbdh.sender.scheme, sbdh.sender.value),
        final_recipient=Participant(sbdh.receiver.scheme, sbdh.receiver.value),
        parts=[PartInfo.attachment(content_id, mime_type=SBD_MIME_TYPE)],
        conversation_id=conversation_id,
        now=now,
    )


def build_message(
    *,
    sbd: bytes | BinaryIO,
    our_key: KeyMaterial,
    recipient_cert: x509.Certificate,
    sbdh: Sbdh | None = None,
    to_party: str | None = None,
    message_id: str | None = None,
    conversation_id: str | None = None,
    domain: str = messaging.DEFAULT_MESSAGE_ID_DOMAIN,
    now: datetime,
    spill_threshold: int = 1 << 20,
) -> OutgoingMessage:
    """Build the signed and encrypted AS4 message for one Standard Business Document.

    `sbd` is the complete SBD (bytes, or a stream read from its current position). `sbdh` is its parsed header when
    the caller has it already (then the stream need not be seekable); otherwise it is read from `sbd`.
    `to_party` defaults to the CN of `recipient_cert` (the receiver's seat ID, as phase4 fills it from the SMP
    certificate). `message_id` is for a deliberate resend with the same MessageId; by default a fresh
    `<uuid>@<domain>` is used.
    Raises ValueError for unusable input and accesspoint.core.sbdh.SbdhError for an SBD whose header is invalid.
    """
    source = _stream(sbd)
    if sbdh is None:
        if not source.seekable():
            raise ValueError("the SBD stream must be seekable when no sbdh is given: the header is read first, "
                             "then the whole document is compressed")
        start = source.tell()
        sbdh = parse_sbdh(source)
        source.seek(start)
    user_message = user_message_for(
        sbdh, from_party=our_key.subject_cn, to_party=to_party or _common_name(recipient_cert),
        content_id=mime.new_content_id(), domain=domain, conversation_id=conversation_id, now=now,
    )  # fmt: skip
    if message_id is not None:
        if not messaging.is_valid_message_id(message_id):
            raise ValueError(f"MessageId {message_id!r} is not 'left@right' without angle brackets")
        user_message = dataclasses.replace(user_message, message_id=message_id)
    return seal(user_message, source, sbdh, our_key=our_key, recipient_cert=recipient_cert,
                spill_threshold=spill_threshold)


def seal(
    user_message: UserMessage,
    sbd: BinaryIO,
    sbdh: Sbdh,
    *,
    our_key: KeyMaterial,
    recipient_cert: x509.Certificate,
    spill_threshold: int = 1 << 20,
) -> OutgoingMessage:
    """Package an SBD under a given eb:UserMessage: gzip, sign, encrypt, MIME.

    The user message must describe exactly one payload part (the SBD). `build_message` derives the user message
    from the SBDH and is what senders call; this step is separate so the header can be chosen freely, e.g. to
    check how a receiver treats a header that disagrees with the SBDH.
    """
    if len(user_message.parts) != 1 or user_message.parts[0].content_id is None:
        raise ValueError("the user message must describe exactly one attachment part, 'cid:<Content-ID>'")
    content_id = user_message.parts[0].content_id
    envelope = messaging.build_user_message(user_message)
    with tempfile.SpooledTemporaryFile(max_size=spill_threshold) as compressed:
        gzip_stream(sbd, compressed)
        sent_references = sign(
            envelope, our_key, [AttachmentContent(content_id, GZIP_MIME_TYPE, lambda: spool.reader(compressed))]
        )
        with spool.reader(compressed) as plain:
            attachments = encrypt_attachments(
                messaging.security_header(envelope), recipient_cert,
                [PlainAttachment(content_id, GZIP_MIME_TYPE, plain)], spill_threshold=spill_threshold,
            )  # fmt: skip
    try:
        envelope_xml = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        content_type, _ = mime.write_message(
            envelope_xml, [mime.OutgoingAttachment(a.content_id, b"") for a in attachments]
        )
        boundary = mime.parse_content_type(content_type)[1]["boundary"]
    except BaseException:
        for attachment in attachments:
            attachment.body.close()
        raise
    return OutgoingMessage(
        message_id=user_message.message_id,
        user_message=user_message,
        sbdh=sbdh,
        content_type=content_type,
        envelope_xml=envelope_xml,
        sent_references=sent_references,
        boundary=boundary,
        attachments=attachments,
    )
