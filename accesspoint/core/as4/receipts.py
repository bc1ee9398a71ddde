"""Non-repudiation receipts: signing the one we answer with, and checking the one we get back.

A receiver acknowledges a UserMessage with an eb:Receipt whose ebbp:NonRepudiationInformation copies
every ds:Reference of the received SignedInfo verbatim (shared/docs/as4.md section 4, pitfall 15), signed
like any AS4 message and never encrypted.

A sender accepts a receipt only when (section 4, "How the phase4 sender checks the response", plus the
recommended additions phase4 does not enforce):
- it is a Receipt, not an ebMS Error signal (errors win over a receipt, like phase4);
- its signature is valid and covers the receipt's own eb:Messaging and Body;
- RefToMessageId equals the MessageId we sent;
- the NRI holds exactly as many references as we signed, and each matches one of ours on URI, the set of
  Transform algorithms (PrefixList ignored, like phase4), DigestMethod and DigestValue (decoded, so
  whitespace inside base64 does not matter).
Where phase4 only logs an NRI mismatch, we treat it as an invalid receipt (EBMS:0302). Whether the
signer is a Peppol AP certificate, and the AP we sent to, is the caller's check with `certs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from lxml import etree

from accesspoint.core.as4 import messaging, ns, wssec
from accesspoint.core.as4.errors import INVALID_RECEIPT, As4Error
from base import safexml
from certs.keystore import KeyMaterial


def _q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


# --------------------------------------------------------------------------- signing


def sign_receipt(
    user_message_refs: Sequence[etree._Element],
    ref_to_message_id: str,
    key: KeyMaterial,
    *,
    now: datetime,
    message_id: str | None = None,
    domain: str = messaging.DEFAULT_MESSAGE_ID_DOMAIN,
) -> bytes:
    """The signed receipt for a verified UserMessage, serialised once (UTF-8 with XML declaration).

    `user_message_refs` are the ds:Reference elements of the received SignedInfo
    (`SignatureReport.signed_info_references`); `messaging.build_receipt` copies all of them into the
    NRI, in order. The receipt signs its own eb:Messaging and Body and is never encrypted.
    """
    envelope = messaging.build_receipt(ref_to_message_id, user_message_refs, message_id=message_id, timestamp=now,
                                       domain=domain)
    wssec.sign(envelope, key, [])
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


# --------------------------------------------------------------------------- verifying


@dataclass
class ReceiptVerdict:
    valid: bool
    signer: x509.Certificate | None = None
    problems: list[str] = field(default_factory=list)
    error_code: str | None = None  # EBMS:0302 InvalidReceipt when not valid
    ref_to_message_id: str | None = None
    message_id: str | None = None
    nri_references: list[etree._Element] = field(default_factory=list)  # received references that matched ours
    signature: wssec.SignatureReport | None = None

    @property
    def signer_subject(self) -> str | None:
        return self.signer.subject.rfc4514_string() if self.signer is not None else None


def _digest_value(reference: etree._Element) -> bytes | None:
    try:
        return wssec.decode_base64(reference.findtext(_q(ns.DS, "DigestValue")))
    except ValueError:
        return None


def _transform_algorithms(reference: etree._Element) -> frozenset[str]:
    return frozenset(t.get("Algorithm") or "" for t in reference.iterfind(f"{_q(ns.DS, 'Transforms')}/"
                                                                         f"{_q(ns.DS, 'Transform')}"))


def _digest_method(reference: etree._Element) -> str | None:
    method = reference.find(_q(ns.DS, "DigestMethod"))
    return method.get("Algorithm") if method is not None else None


def nri_reference_mismatch(received: etree._Element, sent: etree._Element) -> str | None:
    """Why a received NRI reference does not match one we signed, or None when it does."""
    uri = sent.get("URI")
    if received.get("URI") != uri:
        return f"URI {received.get('URI')!r} differs from {uri!r}"
    if _transform_algorithms(received) != _transform_algorithms(sent):
        return f"{uri}: Transform algorithms {sorted(_transform_algorithms(received))} differ from what we signed"
    if _digest_method(received) != _digest_method(sent):
        return f"{uri}: DigestMethod {_digest_method(received)!r} differs from {_digest_method(sent)!r}"
    received_digest = _digest_value(received)
    if received_digest is None:
        return f"{uri}: DigestValue is not base64"
    if received_digest != _digest_value(sent):
        return f"{uri}: DigestValue differs from the digest we signed"
    return None


def _match_nri(received: Sequence[etree._Element], sent: Sequence[etree._Element], problems: list[str]) -> list[
        etree._Element]:
    if len(received) != len(sent):
        problems.append(f"the receipt's NonRepudiationInformation holds {len(received)} references, but we signed "
                        f"{len(sent)}")
    unmatched = list(sent)
    matched: list[etree._Element] = []
    for reference in received:
        same_uri = [s for s in unmatched if s.get("URI") == reference.get("URI")]
        if not same_uri:
            problems.append(f"the receipt acknowledges {reference.get('URI')!r}, which we did not sign")
            continue
        mismatch = nri_reference_mismatch(reference, same_uri[0])
        if mismatch is not None:
            problems.append(f"NRI reference does not match what we signed: {mismatch}")
            continue
        unmatched.remove(same_uri[0])
        matched.append(reference)
    problems.extend(f"the receipt does not acknowledge our reference {s.get('URI')!r}" for s in unmatched)
    return matched


def verify_receipt(
    data: bytes | etree._Element, *, sent_message_id: str, sent_references: Sequence[etree._Element]
) -> ReceiptVerdict:
    """Check a response to a UserMessage we sent, as a sender must; never raises for a bad response.

    `data` is the response body (or the tree parsed from it); `sent_references` are the ds:Reference
    elements `wssec.sign` returned for our UserMessage.
    """
    verdict = ReceiptVerdict(valid=False)
    problems = verdict.problems
    if isinstance(data, bytes):
        try:
            root = safexml.parse_bytes(data)
        except safexml.XmlError as exc:
            return _finish(verdict, f"the response is not XML: {exc}")
    else:
        root = data
    try:
        parsed = messaging.parse_envelope(root)
    except As4Error as exc:
        return _finish(verdict, f"the response is not a readable ebMS signal: {exc.description}")
    if parsed.kind == "user-message":
        return _finish(verdict, "the response is a UserMessage, not a Receipt")
    signal = parsed.error or parsed.receipt
    if signal is not None:
        verdict.message_id, verdict.ref_to_message_id = signal.message_id, signal.ref_to_message_id
    if parsed.error is not None:
        return _finish(verdict, f"the receiver answered with an ebMS Error signal, not a Receipt: {parsed.error}")
    receipt = parsed.receipt
    if receipt is None:
        return _finish(verdict, "the response holds no eb:Receipt")

    if parsed.soap_version != "1.2":
        problems.append("the receipt is SOAP 1.1; Peppol AS4 uses SOAP 1.2 only")
    report = wssec.verify(root, {}, require=wssec.RequiredCoverage(messaging=True, body=True))
    verdict.signature = report
    verdict.signer = report.signer
    problems.extend(f"receipt signature: {p}" for p in report.problems)
    if receipt.ref_to_message_id != sent_message_id:
        problems.append(f"the receipt's RefToMessageId {receipt.ref_to_message_id!r} is not the MessageId we sent "
                        f"({sent_message_id!r})")
    if not receipt.nri_references:
        problems.append("the receipt holds no ebbp:NonRepudiationInformation references (not a non-repudiation "
                        "receipt)")
    else:
        verdict.nri_references = _match_nri(receipt.nri_references, sent_references, problems)
    return _finish(verdict)


def _finish(verdict: ReceiptVerdict, problem: str | None = None) -> ReceiptVerdict:
    if problem is not None:
        verdict.problems.append(problem)
    verdict.valid = not verdict.problems
    verdict.error_code = None if verdict.valid else INVALID_RECEIPT
    return verdict
