"""Opening the answer to a message we sent (DESIGN.md, outbound step 3): a receipt we can keep as evidence, an ebMS
Error signal, or something that is neither.

A receipt counts only when every check passes: its signature over its own eb:Messaging and Body, its signer is the
receiving AP's certificate from the SMP and is trusted (`check_signer`), RefToMessageId is our MessageId, and the
non-repudiation digests equal what we signed (`receipts.verify_receipt`). What the sender then does (retry, fail,
which hint to show) is the sending flow's policy, not the protocol's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from accesspoint.core.as4 import messaging, mime, ns
from accesspoint.core.as4.errors import INVALID_RECEIPT, As4Error
from accesspoint.core.as4.messaging import ErrorSignal
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.steps import SignerCheck
from base import safexml
from base.chunks import chunk_stream


@dataclass(frozen=True)
class Receipted:
    """A receipt that passed every check; `raw` is its SOAP envelope as received, kept as evidence."""

    receipt_message_id: str
    ref_to_message_id: str
    raw: bytes


@dataclass(frozen=True)
class Refused:
    """The receiving AP answered with an ebMS Error signal."""

    signal: ErrorSignal


@dataclass(frozen=True)
class BadReceipt:
    """A receipt that cannot serve as evidence, and why."""

    problems: tuple[str, ...]


@dataclass(frozen=True)
class NotAnAnswer:
    """Neither a receipt nor an ebMS error (an HTTP error page, an empty body): why it could not be read."""

    reason: str


Answer = Receipted | Refused | BadReceipt | NotAnAnswer


def _soap_part(body: bytes, content_type: str) -> bytes:
    """The SOAP envelope of an answer: the body, or the root part when a stack answers multipart/related."""
    if content_type.lower().startswith("multipart/"):
        with mime.parse_message(chunk_stream(body), content_type) as parsed:
            return parsed.root.read_bytes()
    return body


def open_answer(body: bytes, content_type: str, *, sent_message_id: str, sent_references: Sequence[etree._Element],
                expected_signer: x509.Certificate, check_signer: SignerCheck) -> Answer:
    """Judge the HTTP answer to our message `sent_message_id`, whose signature had `sent_references`.

    `expected_signer` is the receiving AP's certificate from its SMP; `check_signer` judges it against the Peppol AP
    CA at the caller's now.
    """
    try:
        envelope = _soap_part(body, content_type)
        root = safexml.parse_bytes(envelope)
        parsed = messaging.parse_envelope(root)
    except (As4Error, safexml.XmlError) as exc:
        return NotAnAnswer(getattr(exc, "description", str(exc)))
    if parsed.error is not None:
        return Refused(parsed.error)
    verdict = verify_receipt(root, sent_message_id=sent_message_id, sent_references=sent_references)
    problems = list(verdict.problems)
    if verdict.signer is not None:
        if verdict.signer.public_bytes(Encoding.DER) != expected_signer.public_bytes(Encoding.DER):
            problems.append(f"the receipt is signed by {verdict.signer_subject}, not by the access point we sent to "
                            f"({expected_signer.subject.rfc4514_string()})")
        signer_verdict = check_signer(verdict.signer)
        if not signer_verdict.valid:
            problems.append(f"the receipt signer {verdict.signer_subject} is not a trusted Peppol AP certificate "
                            f"({signer_verdict.reason}: {signer_verdict.detail})")
    if problems or not verdict.valid:
        return BadReceipt(tuple(problems))
    return Receipted(verdict.message_id or "", verdict.ref_to_message_id or "", envelope)


def signed_references(body: Iterable[bytes], content_type: str) -> list[etree._Element]:
    """The ds:Reference elements of our signature in a stored AS4 body (what a receipt's NRI must match)."""
    with mime.parse_message(chunk_stream(body), content_type) as parsed:
        root = safexml.parse_bytes(parsed.root.read_bytes())
    signed_info = root.find(f".//{{{ns.WSSE}}}Security/{{{ns.DS}}}Signature/{{{ns.DS}}}SignedInfo")
    if signed_info is None:
        raise As4Error(INVALID_RECEIPT, "the stored AS4 body has no ds:SignedInfo")
    return list(signed_info.iterfind(f"{{{ns.DS}}}Reference"))
