"""Step-by-step analysis of an AS4 message, receipt or error, for `peppol-ap inspect`.

A UserMessage goes through the receiver's own step list (`steps.INBOUND_STEPS`), run so that every step is reported
rather than stopping at the first failure, then through the inbound checks the caller passes (those that need no
database); so the first failing step is the one the receiver would refuse with, and `ebms_error` is the code it
would answer. Receipts and errors get the steps a sender runs on them: envelope, profile, signature, certificate.

For a receipt the verdict is the sender's: anything wrong makes it an invalid receipt (EBMS:0302, as
`receipts.verify_receipt` says). An ebMS Error signal is never answered (phase4 answers signals with HTTP 204), so
its `ebms_error` is null; the codes it carries are in `errors`, and it counts as a failed exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Literal, cast

from cryptography import x509
from lxml import etree

from accesspoint.core.as4 import messaging, mime, ns
from accesspoint.core.as4.errors import INVALID_RECEIPT, As4Error
from accesspoint.core.as4.messaging import UserMessage
from accesspoint.core.peppol import profile, steps
from accesspoint.core.peppol.steps import (
    CERTIFICATE,
    INBOUND_STEPS,
    SIGNATURE,
    InboundLimits,
    Opening,
    Outcome,
    Skipped,
    Step,
    run_steps,
)
from accesspoint.core.sbdh import Sbdh
from base.chunks import chunk_stream
from certs.keystore import KeyMaterial
from certs.validation import CertificateValidator, Purpose, Verdict

Kind = Literal["user-message", "receipt", "error"]

_SNIFF_BYTES = 512


@dataclass
class ReferenceCheck:
    uri: str
    digest_valid: bool | None  # None: not checkable (attachment not decrypted, or rejected before any crypto)
    problem: str | None = None


@dataclass
class InspectionReport:
    """Everything `inspect` found out. `steps` are in the order they ran; `valid` means every step passed."""

    kind: Kind | None = None
    message_id: str | None = None
    ref_to_message_id: str | None = None
    soap_version: str | None = None
    signature_valid: bool | None = None  # None: the message carries no signature
    signature_value_valid: bool | None = None  # the SignatureValue alone verified over SignedInfo
    signature_complete: bool = False  # every reference could be checked
    signer: x509.Certificate | None = None
    references: list[ReferenceCheck] = field(default_factory=list)
    certificate: Verdict | None = None
    revocation_checked: bool = False
    decrypted: bool | None = None  # None: nothing in the message is encrypted
    encrypted_for: list[str] = field(default_factory=list)
    payload_sha256: str | None = None
    payload_size: int | None = None
    sbdh: Sbdh | None = None
    errors: list[messaging.ErrorDetail] = field(default_factory=list)
    steps: list[Outcome] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.steps) and all(step.status in ("ok", "skipped") for step in self.steps)

    @property
    def signer_subject(self) -> str | None:
        return self.signer.subject.rfc4514_string() if self.signer is not None else None

    @property
    def ebms_error(self) -> As4Error | None:
        """The error our receiver (or, for a receipt, our sender) would report; None when all is well. The steps
        run in the receiver's order, so the first failure is the one it answers."""
        if self.kind == "error":
            return None
        first = next((s for s in self.steps if s.error is not None and s.status == "failed"), None)
        if first is None or first.error is None:
            return None
        if self.kind == "receipt":
            return As4Error(INVALID_RECEIPT, f"invalid receipt: {first.summary}")
        return first.error

    def to_dict(self) -> dict[str, Any]:
        error = self.ebms_error
        return {
            "kind": self.kind,
            "message_id": self.message_id,
            "ref_to_message_id": self.ref_to_message_id,
            "soap_version": self.soap_version,
            "valid": self.valid,
            "signature": {
                "valid": self.signature_valid,
                "value_valid": self.signature_value_valid,
                "complete": self.signature_complete,
                "signer_subject": self.signer_subject,
                "references": [{"uri": r.uri, "digest_valid": r.digest_valid, "problem": r.problem}
                               for r in self.references],
            },
            "certificate": {
                "valid": self.certificate.valid if self.certificate else None,
                "reason": self.certificate.reason if self.certificate else None,
                "detail": self.certificate.detail if self.certificate else None,
                "subject": self.certificate.subject if self.certificate else None,
                "issuer": self.certificate.issuer if self.certificate else None,
                "revocation_checked": self.revocation_checked,
            },
            "decrypted": self.decrypted,
            "encrypted_for": self.encrypted_for,
            "payload_sha256": self.payload_sha256,
            "payload_size": self.payload_size,
            "sbdh": _sbdh_dict(self.sbdh) if self.sbdh is not None else None,
            "errors": [_error_dict(e) for e in self.errors],
            "ebms_error": error.code if error is not None else None,
            "ebms_error_description": error.description if error is not None else None,
            "steps": [s.to_dict() for s in self.steps],
        }


def _sbdh_dict(header: Sbdh) -> dict[str, Any]:
    return {
        "sender": str(header.sender),
        "receiver": str(header.receiver),
        "document_type": str(header.document_type),
        "process": str(header.process),
        "country_c1": header.country_c1,
        "instance_identifier": header.instance_identifier,
        "creation": header.creation.isoformat(),
        "standard": header.standard,
        "type_version": header.type_version,
        "type": header.type,
        "mls_to": str(header.mls_to) if header.mls_to is not None else None,
        "mls_type": header.mls_type,
        "warnings": list(header.warnings),
    }


def _error_dict(error: messaging.ErrorDetail) -> dict[str, Any]:
    return {"code": error.code, "severity": error.severity, "short_description": error.short_description,
            "category": error.category, "origin": error.origin,
            "ref_to_message_in_error": error.ref_to_message_in_error, "description": error.description,
            "detail": error.detail}


# --------------------------------------------------------------------------- input


def sniff_content_type(stream: BinaryIO) -> tuple[str | None, BinaryIO]:
    """For a file without a given Content-Type: plain SOAP XML if it starts with `<`, else an HTTP dump.

    Returns the Content-Type (None when a dump names none) and the stream positioned at the body. `stream` must
    support peek (a buffered reader).
    """
    head = cast(Any, stream).peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "application/soap+xml", stream
    headers, body = mime.read_http_dump(stream)
    return headers.get("content-type"), body


# --------------------------------------------------------------------------- the analysis

OfflineCheck = Callable[[UserMessage, Sbdh], None]
"""An inbound check that needs no database, as `flows.receiving.offline_checks` hands them to `inspect`."""


def inspect_message(
    source: bytes | Iterable[bytes],
    content_type: str | None = None,
    *,
    keys: Sequence[KeyMaterial] = (),
    validator: CertificateValidator | None = None,
    at: datetime,
    limits: InboundLimits | None = None,
    checks: Sequence[tuple[str, OfflineCheck]] = (),
) -> InspectionReport:
    """Analyse one AS4 message, receipt or error signal; never raises for a bad message.

    `source` is the HTTP body as byte chunks (or a whole `.as4in`-style dump or plain SOAP file when `content_type`
    is None: see `sniff_content_type`). `keys` are the keys to try for decryption; `validator` judges the signer
    certificate (None: the certificate step is skipped and says so) at the time `at`. `checks` are the receiver's
    inbound checks that need no database, by name.
    """
    report = InspectionReport()
    stream = chunk_stream(source)
    if content_type is None:
        try:
            content_type, stream = sniff_content_type(stream)
        except As4Error as exc:
            report.steps.append(Outcome("transport", "failed", f"the message cannot be unpacked: {exc.description}",
                                        exc))
            return report
    check_signer = None if validator is None else (lambda cert: validator.validate(cert, Purpose.AP_SIGNING, at))
    opening = Opening(stream, content_type, list(keys), check_signer, limits or InboundLimits(), at)
    try:
        outcomes = run_steps(INBOUND_STEPS[:3], opening, stop_at_failure=False)  # transport, SOAP, signature policy
        kind, report.message_id, report.ref_to_message_id = (
            _lenient_header(opening.root) if opening.root is not None else (None, None, None))
        if kind in ("receipt", "error"):
            outcomes += run_steps(_SIGNAL_STEPS, opening, stop_at_failure=False)
        else:
            extra = tuple(Step(name, _check_step(check), {"user_message": None, "sbdh": None})
                          for name, check in checks)
            outcomes += run_steps(INBOUND_STEPS[3:] + extra, opening, stop_at_failure=False)
        _fill(report, opening, kind, outcomes, validator)
    finally:
        opening.close()
    return report


def _check_step(check: OfflineCheck) -> Callable[[Opening], str]:
    def run(o: Opening) -> str:
        assert o.user_message is not None and o.sbdh is not None
        check(o.user_message, o.sbdh)
        return "passed"

    return run


# Receipts and errors: what a sender checks of the answer it gets.


def _signal_envelope(o: Opening) -> str:
    assert o.root is not None
    o.parsed = parsed = messaging.parse_envelope(o.root)
    o.clear = {}  # a signal has no attachments to verify
    signal = parsed.error or parsed.receipt
    assert signal is not None
    o.message_id = signal.message_id
    return (f"SOAP {parsed.soap_version} {parsed.kind} {signal.message_id}"
            + (f" in reply to {signal.ref_to_message_id}" if signal.ref_to_message_id else ""))


def _receipt_profile(o: Opening) -> str:
    assert o.parsed is not None
    receipt = o.parsed.receipt
    if receipt is None:
        return Skipped("not a receipt")
    problems = []
    if o.parsed.soap_version != "1.2":
        problems.append("it is SOAP 1.1; Peppol AS4 uses SOAP 1.2 only")
    try:
        profile.check_peppol_receipt(receipt)
    except As4Error as exc:
        problems.append(exc.description)
    if problems:
        raise As4Error(INVALID_RECEIPT, "; ".join(problems))
    return (f"non-repudiation receipt with {len(receipt.nri_references)} NRI reference(s) for "
            f"{receipt.ref_to_message_id}")


def _error_signal(o: Opening) -> str:
    assert o.parsed is not None
    signal = o.parsed.error
    if signal is None:
        return Skipped("not an error signal")
    verdict = "rejected" if signal.is_failure else "only warned about"
    about = signal.ref_to_message_id or "a message it does not name (correlate by the HTTP request)"
    fault = f"; SOAP Fault: {signal.soap_fault}" if signal.soap_fault else ""
    summary = f"the receiver {verdict} {about}: {signal}{fault}"
    return steps.Failed(summary) if signal.is_failure else summary


def _signal_signature(o: Opening) -> str:
    assert o.root is not None and o.parsed is not None
    security = o.parsed.security
    if o.parsed.error is not None and (security is None or security.find(f"{{{ns.DS}}}Signature") is None):
        return Skipped("not signed (ebMS errors from phase4 and others usually are not)")
    return SIGNATURE.run(o)


_SIGNAL_STEPS: tuple[Step, ...] = (
    Step("envelope", _signal_envelope, {"root": None}),
    Step("profile", _receipt_profile, {"parsed": None}),
    Step("error-signal", _error_signal, {"parsed": None}),
    Step("signature", _signal_signature, {"parsed": None, "policy_passed": None}),
    Step("certificate", CERTIFICATE.run, {"signer": None, "check_signer": "not checked (no trust anchors given)"}),
)


def _fill(report: InspectionReport, o: Opening, kind: Kind | None, outcomes: list[Outcome],
          validator: CertificateValidator | None) -> None:
    """The report's fields, from what the steps found out."""
    by_name = {outcome.name: outcome for outcome in outcomes}
    parsed = o.parsed
    report.kind = parsed.kind if parsed is not None else kind
    if parsed is not None:
        report.soap_version = parsed.soap_version
        signal = parsed.user_message or parsed.error or parsed.receipt
        if signal is not None:
            report.message_id, report.ref_to_message_id = signal.message_id, signal.ref_to_message_id
        if parsed.error is not None:
            report.errors = list(parsed.error.errors)
    signature = o.signature
    report.signer = o.signer
    if signature is not None and steps.signature_element(o.root) is not None:  # None: the message is not signed
        report.signature_value_valid = signature.signature_valid
        if signature.signer is None and signature.error is not None and not signature.references:
            # rejected before any crypto (algorithms, Ids, key reference): none of the references was checked
            report.references = [ReferenceCheck(r.get("URI") or "", None, "not checked")
                                 for r in signature.signed_info_references]
        else:
            report.references = [ReferenceCheck(r.uri, r.digest_valid, r.problem) for r in signature.references]
        failed = any(by_name.get(name, _NOT_RUN).status == "failed" for name in ("signature-policy", "signature"))
        report.signature_valid = signature.signature_valid and not failed
        report.signature_complete = by_name.get("signature", _NOT_RUN).status == "ok"
    if o.root is not None:
        report.encrypted_for = steps.recipient_names(o.root)
        if report.encrypted_for:
            report.decrypted = by_name.get("decryption", _NOT_RUN).status == "ok"
    report.payload_sha256, report.payload_size, report.sbdh = o.payload_sha256, o.payload_size, o.sbdh
    if isinstance(o.verdict, Verdict):
        report.certificate = o.verdict
    for outcome in outcomes:
        report.steps.append(outcome)
        if outcome.name == "certificate" and outcome.status != "skipped" and validator is not None:
            report.revocation_checked = validator.revocation is not None
            if not report.revocation_checked:
                report.steps.append(Outcome("revocation", "skipped",
                                            "not checked (use --revocation to ask the CA's CRL/OCSP server)"))


_NOT_RUN = Outcome("", "skipped", "")


# --------------------------------------------------------------------------- lenient reading for the report


def _find(root: etree._Element, *path: str) -> etree._Element | None:
    """Header/<ns, local> style lookup that tolerates any SOAP version: path is ("Header", ns, local)."""
    header = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == path[0]), None)
    if header is None:
        return None
    return header.find(f"{{{path[1]}}}{path[2]}")


def _lenient_header(root: etree._Element) -> tuple[Kind | None, str | None, str | None]:
    """Kind, MessageId and RefToMessageId read without any rule, for a message the envelope parser refused."""
    messaging_el = _find(root, "Header", ns.EB, "Messaging")
    if messaging_el is None:
        return None, None, None
    user = messaging_el.find(f"{{{ns.EB}}}UserMessage")
    signal = messaging_el.find(f"{{{ns.EB}}}SignalMessage")
    container = user if user is not None else signal
    if container is None:
        return None, None, None
    kind: Kind = "user-message"
    if user is None:
        kind = "error" if container.find(f"{{{ns.EB}}}Error") is not None else "receipt"
    info = container.find(f"{{{ns.EB}}}MessageInfo")
    message_id = (info.findtext(f"{{{ns.EB}}}MessageId") or "").strip() or None if info is not None else None
    ref_to = (info.findtext(f"{{{ns.EB}}}RefToMessageId") or "").strip() or None if info is not None else None
    return kind, message_id, ref_to


def human_lines(report: InspectionReport) -> Iterator[str]:
    """One line per step with ✓/✗ (– for skipped, ? for incomplete), then the verdict."""
    marks = {"ok": "✓", "failed": "✗", "skipped": "–", "incomplete": "?"}
    head = f"{report.kind or 'unknown message'} {report.message_id or ''}".rstrip()
    if report.ref_to_message_id:
        head += f" (in reply to {report.ref_to_message_id})"
    yield head
    for step in report.steps:
        code = f" [{step.error.code}]" if step.error is not None and step.status == "failed" else ""
        yield f"{marks[step.status]} {step.name}: {step.summary}{code}"
    error = report.ebms_error
    if report.valid:
        yield "verdict: valid"
    elif error is not None:
        yield f"verdict: NOT valid; we would answer {error.code} {error.info.short_description}"
    else:
        yield "verdict: NOT valid"
