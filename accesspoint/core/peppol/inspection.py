"""Step-by-step analysis of an AS4 message, receipt or error, for `peppol-ap inspect`.

The receive path stops at the first failure; an operator debugging an interop test wants to see every step. So
this module drives the core modules (mime, messaging, encryption, wssec, compression, sbdh, certs.validation) one
step at a time and records each outcome, going on wherever the earlier steps left something to look at: a message
that cannot be decrypted still has its SOAP signature, its signer certificate and its ebMS header checked.

`ebms_error` is the code our receiver would answer with. Steps fail in an order that mirrors phase4's
(shared/docs/as4.md section 5) and the first failure in that order decides the code:

1. transport: Content-Type/MIME and XML (phase4: HTTP 400 before anything else);
2. signature policy: a ds:Signature whose SignedInfo names algorithms outside the allow-list, or whose key is not
   referenced as a BinarySecurityToken, is rejected "before any crypto" (vectors/as4/INDEX.md,
   um-unknown-signature-algorithm.xml: phase4 answers EBMS:0101 for that message although its Body is not empty,
   which our envelope rules alone would answer with EBMS:0003);
3. ebMS header and Peppol profile (EBMS:0003/0009/0010/0011/0004);
4. decryption (EBMS:0102), then the signature itself and its coverage (EBMS:0101);
5. signer certificate (EBMS:0101), decompression (EBMS:0303), SBDH (EBMS:0004).

For a receipt the verdict is the sender's: anything wrong makes it an invalid receipt (EBMS:0302, as
`receipts.verify_receipt` says). An ebMS Error signal is never answered (phase4 answers signals with HTTP 204), so
its `ebms_error` is null; the codes it carries are in `errors`, and it counts as a failed exchange.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Literal

from cryptography import x509
from lxml import etree

from accesspoint.core.as4 import encryption, messaging, mime, ns, wssec
from accesspoint.core.as4.compression import gunzip_bounded
from accesspoint.core.as4.errors import (
    FAILED_AUTHENTICATION,
    FAILED_DECRYPTION,
    INVALID_HEADER,
    INVALID_RECEIPT,
    OTHER,
    As4Error,
)
from accesspoint.core.peppol import profile
from accesspoint.core.peppol.inbound import HashingWriter, InboundLimits, check_header_size, cross_check
from accesspoint.core.sbdh import Sbdh, SbdhError, parse_sbdh
from base import safexml
from certs import untrusted
from certs.keystore import KeyMaterial
from certs.validation import CertificateValidator, Purpose, Verdict

Status = Literal["ok", "failed", "incomplete", "skipped"]
Kind = Literal["user-message", "receipt", "error"]

# Ranks of the failing steps: the lowest decides the ebMS error we would answer (see the module docstring).
_RANK = {
    "transport": 0, "soap": 0, "signature-policy": 1, "envelope": 2, "profile": 2, "decryption": 3,
    "signature": 4, "certificate": 5, "payload": 6, "sbdh": 7,
}
_SNIFF_BYTES = 512


@dataclass
class Step:
    """One line of the report: what was checked, how it went, and the ebMS error it implies (if it failed)."""

    name: str
    status: Status
    summary: str
    error: As4Error | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "status": self.status, "summary": self.summary,
                "ebms_error": self.error.code if self.error is not None else None}


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
    steps: list[Step] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.steps) and all(step.status in ("ok", "skipped") for step in self.steps)

    @property
    def signer_subject(self) -> str | None:
        return self.signer.subject.rfc4514_string() if self.signer is not None else None

    @property
    def ebms_error(self) -> As4Error | None:
        """The error our receiver (or, for a receipt, our sender) would report; None when all is well."""
        if self.kind == "error":
            return None
        failed = [s for s in self.steps if s.error is not None and s.status == "failed"]
        if not failed:
            return None
        if self.kind == "receipt":
            first = min(failed, key=lambda s: _RANK.get(s.name, 9))
            return As4Error(INVALID_RECEIPT, f"invalid receipt: {first.summary}")
        return min(failed, key=lambda s: _RANK.get(s.name, 9)).error

    def add(self, name: str, status: Status, summary: str, error: As4Error | None = None) -> Step:
        # Descriptions copied from messages can span lines; a report line must not.
        step = Step(name, status, " ".join(summary.split()), error)
        self.steps.append(step)
        return step

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

    Returns the Content-Type (None when a dump names none) and the stream positioned at the body. `stream` must be
    seekable.
    """
    start = stream.tell()
    head = stream.read(_SNIFF_BYTES)
    stream.seek(start)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "application/soap+xml", stream
    headers, body = mime.read_http_dump(stream)
    return headers.get("content-type"), body


# --------------------------------------------------------------------------- the analysis


def inspect_message(
    source: bytes | BinaryIO,
    content_type: str | None = None,
    *,
    keys: Sequence[KeyMaterial] = (),
    validator: CertificateValidator | None = None,
    at: datetime | None = None,
    limits: InboundLimits | None = None,
) -> InspectionReport:
    """Analyse one AS4 message, receipt or error signal; never raises for a bad message.

    `source` is the HTTP body (or bytes/stream of a whole `.as4in`-style dump or plain SOAP file when
    `content_type` is None: see `sniff_content_type`). `keys` are the keys to try for decryption; `validator`
    judges the signer certificate (None: the certificate step is skipped and says so); `at` is the time for the
    certificate check (None: now).
    """
    limits = limits or InboundLimits()
    report = InspectionReport()
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        if content_type is None:
            content_type, stream = sniff_content_type(stream)
        message = mime.parse_message(stream, content_type, spill_threshold=limits.spill_threshold_bytes,
                                     max_total=limits.max_message_bytes)
    except As4Error as exc:
        report.add("transport", "failed", f"the message cannot be unpacked: {exc.description}", exc)
        return report
    with message:
        attachments = ", ".join(f"<{p.content_id}> {p.media_type} {p.size} bytes" for p in message.attachments)
        report.add("transport", "ok", f"{content_type.split(';')[0] if content_type else 'no Content-Type'}: "
                   f"SOAP part of {message.root.size} bytes, {len(message.attachments)} attachment(s)"
                   f"{': ' + attachments if attachments else ''}")
        try:
            check_header_size(message.root, limits.max_header_bytes)
        except As4Error as exc:
            report.add("soap", "failed", exc.description, exc)
            return report
        try:
            root = safexml.parse_stream(message.root.open())
        except safexml.XmlError as exc:
            error = As4Error(INVALID_HEADER, f"the SOAP part is not acceptable XML: {exc}", http_status=400)
            report.add("soap", "failed", error.description, error)
            return report
        _Analysis(report, root, message, keys, validator, at, limits).run()
    return report


class _Analysis:
    def __init__(self, report: InspectionReport, root: etree._Element, message: mime.MimeMessage,
                 keys: Sequence[KeyMaterial], validator: CertificateValidator | None, at: datetime | None,
                 limits: InboundLimits) -> None:
        self.report = report
        self.root = root
        self.message = message
        self.keys = keys
        self.validator = validator
        self.at = at
        self.limits = limits
        self.parsed: messaging.ParsedEnvelope | None = None
        self.decrypted: dict[str, encryption.DecryptedAttachment] = {}

    def run(self) -> None:
        try:
            self._envelope()
            kind = self.report.kind
            if kind == "user-message":
                self._user_message_profile()
            elif kind == "receipt":
                self._receipt_profile()
            elif kind == "error":
                self._error_signal()
            self._decryption()
            self._signature()
            self._certificate()
            if kind == "user-message":
                self._payload()
        finally:
            for item in self.decrypted.values():
                item.body.close()

    # ----------------------------------------------------------------- envelope and ebMS header

    def _envelope(self) -> None:
        report = self.report
        try:
            self.parsed = messaging.parse_envelope(self.root)
        except As4Error as exc:
            report.kind, report.message_id, report.ref_to_message_id = _lenient_header(self.root)
            report.add("envelope", "failed", exc.description, exc)
            return
        parsed = self.parsed
        report.kind, report.soap_version = parsed.kind, parsed.soap_version
        signal = parsed.user_message or parsed.error or parsed.receipt
        if signal is not None:
            report.message_id = signal.message_id
            report.ref_to_message_id = signal.ref_to_message_id
        report.add("envelope", "ok", f"SOAP {parsed.soap_version} {parsed.kind} {report.message_id}"
                   + (f" in reply to {report.ref_to_message_id}" if report.ref_to_message_id else ""))

    def _user_message_profile(self) -> None:
        if self.parsed is None or self.parsed.user_message is None:
            return
        um = self.parsed.user_message
        cids = [p.content_id or "" for p in self.message.attachments]
        try:
            profile.check_peppol_user_message(um, cids)
        except As4Error as exc:
            self.report.add("profile", "failed", exc.description, exc)
            return
        self.report.add("profile", "ok", f"Peppol UserMessage from {um.from_party} to {um.to_party}, "
                        f"{um.original_sender} -> {um.final_recipient}, service {um.service}, action {um.action}")

    def _receipt_profile(self) -> None:
        parsed = self.parsed
        if parsed is None or parsed.receipt is None:
            return
        problems = []
        if parsed.soap_version != "1.2":
            problems.append("it is SOAP 1.1; Peppol AS4 uses SOAP 1.2 only")
        try:
            profile.check_peppol_receipt(parsed.receipt)
        except As4Error as exc:
            problems.append(exc.description)
        if problems:
            self.report.add("profile", "failed", "; ".join(problems), As4Error(INVALID_RECEIPT, "; ".join(problems)))
        else:
            self.report.add("profile", "ok", f"non-repudiation receipt with {len(parsed.receipt.nri_references)} "
                            f"NRI reference(s) for {parsed.receipt.ref_to_message_id}")

    def _error_signal(self) -> None:
        signal = self.parsed.error if self.parsed is not None else None
        if signal is None:
            return
        self.report.errors = list(signal.errors)
        verdict = "rejected" if signal.is_failure else "only warned about"
        about = signal.ref_to_message_id or "a message it does not name (correlate by the HTTP request)"
        fault = f"; SOAP Fault: {signal.soap_fault}" if signal.soap_fault else ""
        status: Status = "failed" if signal.is_failure else "ok"
        self.report.add("error-signal", status, f"the receiver {verdict} {about}: {signal}{fault}")

    # ----------------------------------------------------------------- decryption

    def _decryption(self) -> None:
        report = self.report
        security = self._security()
        encrypted_keys = security.findall(f"{{{ns.XENC}}}EncryptedKey") if security is not None else []
        if security is None or not encrypted_keys:
            if report.kind == "user-message":
                where = "no xenc:EncryptedKey" if security is not None else "no wsse:Security header"
                report.add("decryption", "failed", f"the message is not encrypted ({where}); Peppol requires the "
                           "payload to be encrypted", As4Error(FAILED_DECRYPTION, "the message is not encrypted"))
            return
        recipients = [_token_certificate(security, ek) for ek in encrypted_keys]
        report.encrypted_for = [_describe(c) if c is not None else "a certificate not given as a BinarySecurityToken"
                                for c in recipients]
        targets = ", ".join(report.encrypted_for)
        report.decrypted = False
        if not self.keys:
            try:  # the structure is still worth checking: it is what a key holder would run into
                encryption.read_encryption_header(self.root)
            except As4Error as exc:
                report.add("decryption", "failed", f"the encryption header is not acceptable: {exc.description}", exc)
                return
            report.add("decryption", "failed", f"not possible: encrypted for {targets}, and no key was given "
                       "(--key)", As4Error(FAILED_DECRYPTION, f"no key to decrypt for {targets}"))
            return
        ciphertexts = {p.content_id: p.open() for p in self.message.attachments if p.content_id}
        try:
            self.decrypted = encryption.decrypt_attachments(self.root, self.keys, ciphertexts,
                                                            spill_threshold=self.limits.spill_threshold_bytes)
        except As4Error as exc:
            ours = {k.certificate for k in self.keys}
            if not any(c in ours for c in recipients if c is not None):
                given = "; ".join(_describe(k.certificate) for k in self.keys)
                summary = f"not possible: encrypted for {targets}, not for the given key ({given})"
            else:
                summary = f"failed: {exc.description}"
            report.add("decryption", "failed", summary, exc)
            return
        report.decrypted = True
        sizes = ", ".join(f"<{cid}> {item.size} bytes {item.mime_type}" for cid, item in self.decrypted.items())
        plain = [p.content_id or "" for p in self.message.attachments if p.content_id not in self.decrypted]
        if plain and report.kind == "user-message":
            # The receiver's rule (inbound._decrypt), worded the same: every payload must be encrypted.
            listed = ", ".join(f"<{cid}>" for cid in plain)
            error = As4Error(FAILED_DECRYPTION, f"attachment {listed} is not encrypted; Peppol requires every payload "
                                                "to be encrypted for the receiving access point")
            report.add("decryption", "failed", f"decrypted {len(self.decrypted)} attachment(s) for {targets}"
                       f"{': ' + sizes if sizes else ''}; but {error.description}", error)
            return
        report.add("decryption", "ok", f"decrypted {len(self.decrypted)} attachment(s) for {targets}: {sizes}")

    def _security(self) -> etree._Element | None:
        return self.parsed.security if self.parsed is not None else _find(self.root, "Header", ns.WSSE, "Security")

    # ----------------------------------------------------------------- signature

    def _plain_attachments(self) -> set[str]:
        """Content-IDs of the attachments no EncryptedData covers: their MIME bodies are what was signed."""
        cids = [p.content_id for p in self.message.attachments if p.content_id]
        try:
            return set(encryption.unencrypted_attachments(self.root, cids))
        except As4Error:
            # The root is no SOAP envelope, or it has two wsse:Security headers: the envelope and signature steps
            # report that, and no attachment can be known to travel in the clear.
            return set()

    def _attachment_sources(self) -> dict[str, wssec.AttachmentContent]:
        """The octets the signature covers, per Content-ID, for the attachments we have in the clear."""
        sources: dict[str, wssec.AttachmentContent] = {}
        plain = self._plain_attachments()
        for part in self.message.attachments:
            cid = part.content_id
            if not cid:
                continue
            if cid in self.decrypted:
                item = self.decrypted[cid]
                sources[cid] = wssec.AttachmentContent.from_stream(cid, item.mime_type, item.body)
            elif cid in plain:
                sources[cid] = wssec.AttachmentContent.from_stream(cid, part.content_type, part.open())
        return sources

    def _signature(self) -> None:
        report = self.report
        security = self._security()
        if security is None or security.find(f"{{{ns.DS}}}Signature") is None:
            if report.kind == "error":
                report.add("signature", "skipped", "not signed (ebMS errors from phase4 and others usually are not)")
                return
            report.add("signature", "failed", "the message is not signed (no ds:Signature in wsse:Security)",
                       As4Error(FAILED_AUTHENTICATION, "the message is not signed"))
            return
        sources = self._attachment_sources()
        # An attachment we could not decrypt cannot be required: its reference is reported as not checkable.
        require = wssec.RequiredCoverage(messaging=True, body=True,
                                         attachment_content_ids=list(sources) if report.kind == "user-message" else ())
        result = wssec.verify(self.root, sources, require=require)
        signature = security.find(f"{{{ns.DS}}}Signature")
        report.signer = result.signer or (_token_certificate(security, signature) if signature is not None else None)
        report.signature_valid = report.signature_value_valid = result.signature_valid
        unchecked = [r for r in result.references if r.digest_valid is None]
        other_problems = [p for p in result.problems if p not in {r.problem for r in unchecked}]
        signer = f"signer {report.signer_subject}" if report.signer is not None else "signer unknown"
        if result.signer is None and result.error is not None:
            # Rejected before any crypto (algorithms, Ids, key reference): list the references, none was checked.
            report.references = [ReferenceCheck(r.get("URI") or "", None, "not checked")
                                 for r in result.signed_info_references]
            report.signature_valid = False
            # The receiver judges the signature policy first only in a well-formed SOAP envelope (inbound.
            # _signature_policy); in any other the envelope error comes first, so this is then the later step.
            step = "signature-policy" if wssec.soap_parts(self.root)[1] is not None else "signature"
            report.add(step, "failed", f"{result.error.description} ({signer})", result.error)
            return
        report.references = [ReferenceCheck(r.uri, r.digest_valid, r.problem) for r in result.references]
        ok_digests = sum(1 for r in result.references if r.digest_valid)
        counts = f"{len(result.references)} references, {ok_digests} digest(s) OK"
        if other_problems:
            report.signature_valid = False
            error = result.error if result.error is not None else As4Error(FAILED_AUTHENTICATION, other_problems[0])
            report.add("signature", "failed", f"{'; '.join(other_problems)} ({counts}; {signer})", error)
            return
        report.signature_complete = not unchecked
        if unchecked:
            names = ", ".join(r.uri for r in unchecked)
            report.add("signature", "incomplete", f"SignatureValue valid ({counts}; not checkable without "
                       f"decryption: {names}) {signer}")
            return
        report.add("signature", "ok", f"valid ({counts}) {signer}")

    # ----------------------------------------------------------------- certificate

    def _certificate(self) -> None:
        report = self.report
        if report.signer is None:
            if report.kind != "error":
                report.add("certificate", "skipped", "no signer certificate to check")
            return
        if self.validator is None:
            report.add("certificate", "skipped", "not checked (no trust anchors given)")
            return
        report.revocation_checked = self.validator.revocation is not None
        verdict = self.validator.validate(report.signer, Purpose.AP_SIGNING, self.at)
        report.certificate = verdict
        when = f" at {self.at.isoformat()}" if self.at is not None else ""
        if verdict.valid:
            report.add("certificate", "ok", f"{verdict.detail}{when}")
        else:
            report.add("certificate", "failed", f"{verdict.reason}: {verdict.detail}{when} ({verdict.subject}, "
                       f"issued by {verdict.issuer})",
                       As4Error(FAILED_AUTHENTICATION, f"signing certificate {verdict.reason}: {verdict.detail}"))
        if not report.revocation_checked:
            report.add("revocation", "skipped", "not checked (use --revocation to ask the CA's CRL/OCSP server)")

    # ----------------------------------------------------------------- payload and SBDH

    def _payload(self) -> None:
        report = self.report
        um = self.parsed.user_message if self.parsed is not None else None
        if um is None or not self.message.attachments or not um.parts:
            report.add("payload", "skipped", "no payload to read (no attachment or no eb:PartInfo)")
            return
        first = self.message.attachments[0]
        part_info = um.parts[0]
        cid = first.content_id or ""
        if cid in self.decrypted:
            plain = self.decrypted[cid].body
        elif cid in self._plain_attachments():
            plain = first.open()
        else:
            report.add("payload", "skipped", f"attachment <{cid}> was not decrypted, so its content is unknown")
            return
        plain.seek(0)
        compression = part_info.compression_type
        # max_size 0 would mean "never spill" to SpooledTemporaryFile; a threshold of 0 means "always on disk" here.
        with tempfile.SpooledTemporaryFile(max_size=max(1, self.limits.spill_threshold_bytes), mode="w+b") as out:
            sink = HashingWriter(out)
            if compression == messaging.COMPRESSION_GZIP:
                try:
                    gunzip_bounded(plain, sink, max_bytes=self.limits.max_payload_bytes,
                                   max_ratio=self.limits.max_compression_ratio)
                except As4Error as exc:
                    report.add("payload", "failed", exc.description, exc)
                    return
                how = "gunzipped"
            elif compression is None:
                for chunk in iter(lambda: plain.read(64 << 10), b""):
                    sink.write(chunk)
                how = "not compressed"
            else:
                report.add("payload", "skipped", f"CompressionType {compression!r} is not supported, so the payload "
                           "cannot be read")
                return
            report.payload_sha256 = sink.digest.hexdigest()
            report.payload_size = sink.size
            report.add("payload", "ok", f"{how}: {sink.size} bytes, sha256 {report.payload_sha256}")
            out.seek(0)
            try:
                report.sbdh = parse_sbdh(out)
            except SbdhError as exc:
                report.add("sbdh", "failed", f"{exc.code}: {exc}", As4Error(OTHER, f"SBDH {exc.code}: {exc}"))
                return
        self._sbdh_consistency(um, report.sbdh)

    def _sbdh_consistency(self, um: messaging.UserMessage, header: Sbdh) -> None:
        """The receiver's cross-check (inbound.cross_check): participants, document type and process."""
        warnings = f" (warnings: {'; '.join(header.warnings)})" if header.warnings else ""
        summary = (f"{header.sender} -> {header.receiver}, {header.document_type}, {header.process}, "
                   f"C1 {header.country_c1}, instance {header.instance_identifier}{warnings}")
        try:
            cross_check(um, header)
        except As4Error as exc:
            self.report.add("sbdh", "failed", f"{exc.description}; {summary}", exc)
            return
        self.report.add("sbdh", "ok", summary)


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


def _describe(cert: x509.Certificate) -> str:
    return f"{cert.subject.rfc4514_string()}, serial {cert.serial_number:#x}"


def _token_certificate(security: etree._Element, owner: etree._Element) -> x509.Certificate | None:
    """The BST certificate that `owner`'s (ds:Signature's or xenc:EncryptedKey's) KeyInfo points at, for the report.

    Only for describing: the core modules resolve it again, with their Id and policy checks, when they use it.
    """
    reference = owner.find(f"{{{ns.DS}}}KeyInfo/{{{ns.WSSE}}}SecurityTokenReference/{{{ns.WSSE}}}Reference")
    uri = reference.get("URI", "") if reference is not None else ""
    for bst in security.iter(f"{{{ns.WSSE}}}BinarySecurityToken"):
        if uri.startswith("#") and uri[1:] in (bst.get(f"{{{ns.WSU}}}Id"), bst.get("Id")):
            try:
                return untrusted.load_der(wssec.decode_base64(bst.text))
            except ValueError:  # not base64, or untrusted.MalformedCertificate
                return None
    return None


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
