"""The inbound AS4 step list (DESIGN.md, inbound step 1): one ordered tuple of named steps over an `Opening`.

`inbound.open_message` runs `INBOUND_STEPS` and stops at the first As4Error; `inspection.inspect_message` runs the
same tuple, records every outcome and goes on wherever the earlier steps left something to look at: a message that
cannot be decrypted still has its signature over eb:Messaging and the Body checked, and its signer certificate. A
step whose inputs are missing (an earlier step failed to produce them) is not run. So there is one copy of each
check, and the first failing step decides the ebMS code for both: the receiver answers what `inspect` reports.

The order mirrors phase4's (shared/docs/as4.md section 5):

1. transport: Content-Type/MIME, then the SOAP part as XML (phase4: HTTP 400 before anything else);
2. signature policy: a ds:Signature whose SignedInfo names algorithms outside the allow-list, or whose key is not
   referenced as a BinarySecurityToken, is rejected "before any crypto" (vectors/as4/INDEX.md,
   um-unknown-signature-algorithm.xml: phase4 answers EBMS:0101 for that message although its Body is not empty,
   which our envelope rules alone would answer with EBMS:0003);
3. envelope and Peppol profile (EBMS:0009/0003/0010/0011/0004);
4. decryption, every attachment must be encrypted (EBMS:0102); the signature and its coverage (EBMS:0101); a
   wsu:Timestamp, if the sender put one in the security header, must not have expired (EBMS:0101, see as4.timestamp);
5. signer certificate and eb:From = its seat ID (EBMS:0101); payload: bounded gunzip (EBMS:0303); SBDH, the whole
   payload as exactly one SBD, and the SBDH's cross-check with the ebMS header (EBMS:0004).

Error codes follow phase4 where it has one. phase4 does not compare Action/Service with the SBDH DOCUMENTID/PROCESSID
(as4.md section 5, "Not checked by phase4"); we do, and answer a mismatch with EBMS:0004 like the other SBDH
consistency failures.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, BinaryIO, Literal, Protocol, cast

from cryptography import x509
from lxml import etree

from accesspoint.core.as4 import encryption, messaging, mime, ns, spool, wssec
from accesspoint.core.as4.compression import gunzip_bounded
from accesspoint.core.as4.errors import (
    FAILED_AUTHENTICATION,
    FAILED_DECRYPTION,
    INVALID_HEADER,
    MIME_INCONSISTENCY,
    OTHER,
    PMODE_MISMATCH,
    As4Error,
)
from accesspoint.core.as4.messaging import COMPRESSION_GZIP, ParsedEnvelope, Participant, UserMessage
from accesspoint.core.as4.timestamp import check_timestamp, read_timestamp
from accesspoint.core.peppol import profile
from accesspoint.core.sbdh import DocumentSpan, Sbdh, SbdhError, locate_business_document, parse_sbdh
from base import safexml
from certs import untrusted
from certs.keystore import KeyMaterial
from certs.names import common_names
from smp.identifiers import ParticipantId

COPY_CHUNK = 64 << 10
# Where a UserMessage's MessageId is, read before the header is validated so that even an early refusal names it.
_MESSAGE_ID_PATH = "/".join(f"{{{namespace}}}{local}" for namespace, local in (
    (ns.S12, "Header"), (ns.EB, "Messaging"), (ns.EB, "UserMessage"), (ns.EB, "MessageInfo"), (ns.EB, "MessageId")))

Status = Literal["ok", "failed", "incomplete", "skipped"]


class SignerVerdict(Protocol):
    """What a signer check answers; certs.validation.Verdict has this shape."""

    @property
    def valid(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def detail(self) -> str: ...


SignerCheck = Callable[[x509.Certificate], SignerVerdict]


@dataclass(frozen=True)
class InboundLimits:
    """Bounds on what one message may cost us. Field names are keys of the [as4] configuration section; the
    defaults are those of conf/default.toml."""

    max_message_bytes: int = 200 << 20
    spill_threshold_bytes: int = 1 << 20
    max_payload_bytes: int = 200 << 20
    max_compression_ratio: float = 200
    # The SOAP part is parsed in memory (lxml tree + signature canonicalisation), unlike the attachments, which
    # are streamed; a real Peppol header is a few kB, so this cap only ever stops abuse.
    max_header_bytes: int = 4 << 20
    # how far the sender's clock may be off ours when its wsu:Timestamp is judged (as4.timestamp)
    timestamp_clock_skew_seconds: int = 60


@dataclass(frozen=True)
class Clear:
    """An attachment as it was signed: decrypted, or sent in the clear (which only `inspect` gets to see)."""

    mime_type: str
    body: IO[bytes]
    size: int


@dataclass
class Opening:
    """One message being opened: the inputs, then whatever the steps have found out so far. Each step fills in its
    own fields; a field left None means that step did not get that far. `now` is the time the message is judged
    at (its wsu:Timestamp; the signer certificate's time is `check_signer`'s)."""

    source: BinaryIO
    content_type: str | None
    keys: Sequence[KeyMaterial]
    check_signer: SignerCheck | None
    limits: InboundLimits
    now: datetime
    mime: mime.MimeMessage | None = None
    root: etree._Element | None = None
    message_id: str | None = None
    policy_passed: bool | None = None
    parsed: ParsedEnvelope | None = None
    user_message: UserMessage | None = None
    clear: dict[str, Clear] | None = None
    signature: wssec.SignatureReport | None = None
    signer: x509.Certificate | None = None
    verdict: SignerVerdict | None = None
    payload: BinaryIO | None = None
    payload_size: int | None = None
    payload_sha256: str | None = None
    sbdh: Sbdh | None = None
    document: DocumentSpan | None = None
    spooled: list[IO[bytes]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        for item in self.spooled:
            item.close()


class Skipped(str):
    """A step's answer when there was nothing for it to check (an ebMS ping has no payload)."""


class Failed(str):
    """A step's answer when what it looked at failed with no ebMS error of ours to answer (inspect only: an ebMS
    Error signal reports a failed exchange, but nobody answers an error)."""


class Incomplete(str):
    """A step's answer when what it could check passed but some of it could not be checked (inspect only: an
    attachment that could not be decrypted leaves its signature reference unchecked)."""


@dataclass(frozen=True)
class Step:
    """A named check. `needs` maps the `Opening` fields it reads to what `inspect` says when one is missing (None:
    nothing, because the failure of the step that should have produced it is reported already)."""

    name: str
    run: Callable[[Opening], str]
    needs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How one step went: what `inspect` prints, and the ebMS error it implies if it failed."""

    name: str
    status: Status
    summary: str
    error: As4Error | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"step": self.name, "status": self.status, "summary": self.summary,
                "ebms_error": self.error.code if self.error is not None else None}


def run_steps(steps: Sequence[Step], opening: Opening, *, stop_at_failure: bool) -> list[Outcome]:
    """Run `steps` in order. With `stop_at_failure` the first As4Error propagates (the receiver); without, every
    failure is recorded and the next step runs if its inputs are there (`inspect`)."""
    outcomes: list[Outcome] = []
    for step in steps:
        missing = [reason for name, reason in step.needs.items() if getattr(opening, name) is None]
        if missing:
            if missing[0] is not None:
                outcomes.append(Outcome(step.name, "skipped", missing[0]))
            continue
        try:
            answer = step.run(opening)
        except As4Error as exc:
            if stop_at_failure:
                raise
            outcomes.append(Outcome(step.name, "failed", _one_line(exc.description), exc))
            continue
        status: Status = ("skipped" if isinstance(answer, Skipped) else "incomplete" if isinstance(answer, Incomplete)
                          else "failed" if isinstance(answer, Failed) else "ok")
        outcomes.append(Outcome(step.name, status, _one_line(answer)))
    return outcomes


def _one_line(text: str) -> str:
    # Descriptions copied from messages can span lines; a report line must not.
    return " ".join(text.split())


# --------------------------------------------------------------------------- transport and SOAP


def _transport(o: Opening) -> str:
    o.mime = mime.parse_message(o.source, o.content_type, spill_threshold=o.limits.spill_threshold_bytes,
                                max_total=o.limits.max_message_bytes)
    o.spooled += [o.mime.root.body, *(part.body for part in o.mime.attachments)]
    _read_to_the_end(o.source, o.limits.max_message_bytes)
    listed = ", ".join(f"<{p.content_id}> {p.media_type} {p.size} bytes" for p in o.mime.attachments)
    return (f"{(o.content_type or '').split(';')[0]}: SOAP part of {o.mime.root.size} bytes, "
            f"{len(o.mime.attachments)} attachment(s){': ' + listed if listed else ''}")


def _read_to_the_end(source: BinaryIO, limit: int) -> None:
    """Read what follows the MIME closing boundary. The epilogue means nothing (RFC 2046), but a request is whole
    only once its end has been read, and that is where the edge finds out that a body was shorter than it declared
    (web.request_body): before anything is stored or receipted, not after."""
    epilogue = 0
    while data := source.read(COPY_CHUNK):
        epilogue += len(data)
        if epilogue > limit:
            raise As4Error(MIME_INCONSISTENCY, f"more than {limit} bytes follow the MIME closing boundary",
                           http_status=413)


def _soap(o: Opening) -> str:
    assert o.mime is not None
    root = o.mime.root
    if root.size > o.limits.max_header_bytes:
        # Refused before it is read into memory (the MIME reader spooled it already).
        raise As4Error(INVALID_HEADER, f"the SOAP part has {root.size} bytes, more than this access point accepts "
                                       f"for the SOAP envelope ({o.limits.max_header_bytes} bytes)", http_status=413)
    try:
        o.root = safexml.parse_bytes(root.read_bytes())
    except safexml.XmlError as exc:
        raise As4Error(INVALID_HEADER, f"the SOAP part is not acceptable XML: {exc}", http_status=400) from None
    o.message_id = o.root.findtext(_MESSAGE_ID_PATH) or None
    return f"well-formed XML, {etree.QName(o.root).localname} in {etree.QName(o.root).namespace or 'no namespace'}"


def _signature_policy(o: Opening) -> str:
    """Refuse a signature we would not even try to verify (unknown algorithms, key not referenced as a BST,
    ambiguous Ids) before reading the ebMS header, as phase4/WSS4J do. A missing signature, or one outside a
    well-formed SOAP Header, is left to the full check after decryption, where phase4 reports it too."""
    assert o.root is not None
    _, header, _ = wssec.soap_parts(o.root)
    if header is None or header.find(f"{{{ns.WSSE}}}Security/{{{ns.DS}}}Signature") is None:
        o.policy_passed = True
        return Skipped("no ds:Signature in a SOAP Header to judge before the ebMS header")
    report = wssec.verify(o.root, {}, require=wssec.RequiredCoverage(messaging=False, body=False))
    if report.signer is None and report.error is not None:
        # for inspect, which goes on: the references that were never checked, the certificate the signature claims
        o.signature, o.signer = report, claimed_signer(o.root)
        raise report.error
    o.policy_passed = True
    return "algorithms, Ids and key reference acceptable"


# --------------------------------------------------------------------------- ebMS header and Peppol profile


def _envelope(o: Opening) -> str:
    assert o.root is not None
    parsed = messaging.parse_envelope(o.root)
    if parsed.kind != "user-message" or parsed.user_message is None:
        # Peppol is one-way push with synchronous signals, so a receipt or error never arrives as a request. phase4
        # (which also serves asynchronous profiles) answers such a request with an empty 204; we answer with an
        # error, because for a Peppol sender it is a bug it should hear about.
        raise As4Error(PMODE_MISMATCH, f"the request carries an ebMS {parsed.kind} signal; this endpoint accepts "
                                       "only Peppol UserMessages (receipts and errors come back on the response)")
    o.parsed, o.user_message, o.message_id = parsed, parsed.user_message, parsed.user_message.message_id
    return f"SOAP {parsed.soap_version} user-message {o.message_id}"


def _profile(o: Opening) -> str:
    assert o.user_message is not None and o.mime is not None
    um = o.user_message
    profile.check_peppol_user_message(um, [part.content_id or "" for part in o.mime.attachments])
    return (f"Peppol UserMessage from {um.from_party} to {um.to_party}, {um.original_sender} -> "
            f"{um.final_recipient}, service {um.service}, action {um.action}")


# --------------------------------------------------------------------------- decryption and signature


def _in_the_clear(o: Opening) -> dict[str, Clear]:
    """The attachments no EncryptedData covers: their MIME bodies are what was signed."""
    assert o.mime is not None and o.root is not None
    cids = [part.content_id or "" for part in o.mime.attachments]
    try:
        plain = set(encryption.unencrypted_attachments(o.root, cids))
    except As4Error:
        # Not a SOAP envelope, or two wsse:Security headers: other steps report that, and no attachment can be
        # known to travel in the clear.
        return {}
    return {part.content_id or "": Clear(part.content_type, part.body, part.size)
            for part in o.mime.attachments if (part.content_id or "") in plain}


def _decryption(o: Opening) -> str:
    assert o.mime is not None and o.root is not None
    attachments = o.mime.attachments
    if not attachments:
        o.clear = {}
        return Skipped("no attachment to decrypt")  # an ebMS ping (the profile lets only a ping come without)
    try:
        decrypted = encryption.decrypt_attachments(o.root, o.keys, {p.content_id or "": p.open() for p in attachments},
                                                   spill_threshold=o.limits.spill_threshold_bytes)
    except ValueError:
        o.clear = _in_the_clear(o)  # what inspect can still verify and read
        if o.keys:
            raise
        # inspect without --key: the encryption header was judged, only the key is missing
        raise As4Error(FAILED_DECRYPTION, f"not possible: encrypted for {encrypted_for(o.root)}, and no key was "
                                          "given to decrypt with") from None
    except As4Error as exc:
        o.clear = _in_the_clear(o)
        ours, targets = {key.certificate for key in o.keys}, recipients(o.root)
        if targets and not any(cert in ours for cert in targets if cert is not None):
            given = "; ".join(describe(key.certificate) for key in o.keys)
            raise As4Error(exc.code, f"{exc.description} (the message is encrypted for {encrypted_for(o.root)}, not "
                                     f"for our key: {given})") from None
        raise
    o.spooled += [item.body for item in decrypted.values()]
    o.clear = {cid: Clear(item.mime_type, item.body, item.size) for cid, item in decrypted.items()}
    sizes = ", ".join(f"<{cid}> {item.size} bytes {item.mime_type}" for cid, item in decrypted.items())
    plain = [part for part in attachments if (part.content_id or "") not in decrypted]
    if plain:
        # decrypt_attachments returns only what an EncryptedData covers: the rest travelled in the clear
        o.clear.update({part.content_id or "": Clear(part.content_type, part.body, part.size) for part in plain})
        listed = ", ".join(f"<{part.content_id or ''}>" for part in plain)
        raise As4Error(FAILED_DECRYPTION, f"attachment {listed} is not encrypted; Peppol requires every payload to "
                                          "be encrypted for the receiving access point")
    return f"decrypted {len(decrypted)} attachment(s): {sizes}"


def _signature(o: Opening) -> str:
    assert o.root is not None and o.clear is not None and o.mime is not None
    contents = {cid: wssec.AttachmentContent(cid, item.mime_type, lambda body=item.body: spool.reader(body))
                for cid, item in o.clear.items()}
    report = wssec.verify(o.root, contents, require=wssec.RequiredCoverage(attachment_content_ids=list(contents)))
    o.signature, o.signer = report, report.signer or claimed_signer(o.root)
    # An attachment of this message that could not be decrypted (inspect only; the receiver has every attachment in
    # the clear here, so this is empty for it) cannot be checked: its reference is reported as such, not as forged.
    undecrypted = {part.content_id for part in o.mime.attachments if (part.content_id or "") not in o.clear}
    unchecked = [r for r in report.references if r.digest_valid is None
                 and (found := o.mime.find_attachment(r.uri)) is not None and found.content_id in undecrypted]
    excused = {r.problem for r in unchecked}
    problems = [problem for problem in report.problems if problem not in excused]
    if problems:
        if report.error is not None and not excused:
            raise report.error  # the receiver's case: exactly what wssec found first
        raise As4Error(report.error.code if report.error is not None else FAILED_AUTHENTICATION, problems[0])
    if report.signer is None:
        o.signer = None
        raise As4Error(FAILED_AUTHENTICATION, "the signature names no signing certificate")
    counts = f"{len(report.references)} references, {sum(1 for r in report.references if r.digest_valid)} digest(s) OK"
    if unchecked:
        return Incomplete(f"SignatureValue valid ({counts}; not checkable without decryption: "
                          f"{', '.join(r.uri for r in unchecked)}) signer {report.signer_subject}")
    return f"valid ({counts}) signer {report.signer_subject}"


def _timestamp(o: Opening) -> str:
    assert o.root is not None
    _, header, _ = wssec.soap_parts(o.root)
    security = header.find(f"{{{ns.WSSE}}}Security") if header is not None else None
    if security is None:
        return Skipped("no wsse:Security header")  # the signature step reports that
    stamp = read_timestamp(security)
    if stamp is None:
        return Skipped("no wsu:Timestamp (phase4 sends none, and none is required)")
    skew = timedelta(seconds=o.limits.timestamp_clock_skew_seconds)
    check_timestamp(stamp, o.now, skew)
    expires = messaging.format_timestamp(stamp.expires) if stamp.expires is not None else "never"
    return (f"created {messaging.format_timestamp(stamp.created)}, expires {expires}: current at "
            f"{messaging.format_timestamp(o.now)} (clock skew tolerated: {skew.total_seconds():g} s)")


# --------------------------------------------------------------------------- signer


def _certificate(o: Opening) -> str:
    assert o.signer is not None and o.check_signer is not None
    o.verdict = verdict = o.check_signer(o.signer)
    if not verdict.valid:
        raise As4Error(FAILED_AUTHENTICATION, f"the signing certificate {o.signer.subject.rfc4514_string()} is not "
                                              f"accepted ({verdict.reason}): {verdict.detail}")
    return verdict.detail


def _sender(o: Opening) -> str:
    assert o.signer is not None and o.user_message is not None
    # CEF 1.5.3.3: the sending AP is the one that signed; phase4 leaves this open (as4.md pitfall 20).
    if common_names(o.signer.subject) != [o.user_message.from_party]:
        raise As4Error(FAILED_AUTHENTICATION, f"eb:From/eb:PartyId is {o.user_message.from_party!r}, but the "
                                              f"message is signed by {o.signer.subject.rfc4514_string()}; the "
                                              "PartyId must be the CN (seat ID) of the signing certificate")
    return f"eb:From {o.user_message.from_party} is the signer's seat ID"


# --------------------------------------------------------------------------- payload and SBDH


class HashingWriter(io.RawIOBase):
    """Write-through to a file while taking the SHA-256 and the size of what passes, so the payload digest costs
    no second read."""

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


def _payload(o: Opening) -> str:
    assert o.user_message is not None and o.clear is not None and o.mime is not None
    um = o.user_message
    if um.is_ping:
        # phase4 answers a ping with a receipt but hands nothing to the business side; any attachment is ignored.
        return Skipped("an ebMS ping carries no business document")
    if not o.mime.attachments or not um.parts:
        return Skipped("no payload to read (no attachment or no eb:PartInfo)")
    cid = o.mime.attachments[0].content_id or ""
    if cid not in o.clear:
        return Skipped(f"attachment <{cid}> was not decrypted, so its content is unknown")
    first, compressed = o.clear[cid], um.parts[0].compression_type == COMPRESSION_GZIP
    limits = o.limits
    # max_size 0 would mean "never spill" to SpooledTemporaryFile; a threshold of 0 means "always on disk" here.
    payload = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=max(1, limits.spill_threshold_bytes)))
    o.spooled.append(payload)
    sink = HashingWriter(payload)
    with spool.reader(first.body) as source:
        if compressed:
            gunzip_bounded(source, cast(BinaryIO, sink), max_bytes=limits.max_payload_bytes,
                           max_ratio=limits.max_compression_ratio, compressed_size=first.size)
        else:
            # Compression is optional in ebMS and phase4 accepts plain payloads; the size bound still applies.
            if first.size > limits.max_payload_bytes:
                raise As4Error(OTHER, f"the payload has {first.size} bytes, more than the limit of "
                                      f"{limits.max_payload_bytes}")
            while chunk := source.read(COPY_CHUNK):
                sink.write(chunk)
    o.payload, o.payload_size, o.payload_sha256 = payload, sink.size, sink.digest.hexdigest()
    how = "gunzipped" if compressed else "not compressed"
    return f"{how}: {sink.size} bytes, sha256 {o.payload_sha256}"


def _sbdh(o: Opening) -> str:
    """The SBDH, then the whole payload as exactly one SBD: one well-formed XML document (nothing after its root
    element, no DOCTYPE) holding one header and one business document. parse_sbdh stops at the business document's
    start tag, so without the second, streamed parse a second document (another gzip member, or plain bytes after
    </StandardBusinessDocument>) would be receipted and stored with the first one's header, possibly addressed to
    another participant. phase4 parses the whole SBD and answers anything it cannot read as one with EBMS:0004
    Other (as4.md section 5), so this is EBMS:0004 too. Several gzip members stay acceptable when together they are
    one SBD: gzip defines a file as a series of members and phase4's GZIPInputStream reads them as one stream
    (compression.py); it is the document they make that must be one."""
    assert o.payload is not None
    try:
        o.sbdh = header = parse_sbdh(spool.reader(o.payload))
        with spool.reader(o.payload) as whole:
            o.document = locate_business_document(whole)
    except SbdhError as exc:
        o.sbdh = None  # a header without its one document around it is no SBDH of this message
        raise As4Error(OTHER, f"the first attachment is not a valid Peppol SBD ({exc.code}): {exc}") from None
    finally:
        o.payload.seek(0)  # views share the file position; the payload is handed out rewound
    warnings = f" (warnings: {'; '.join(header.warnings)})" if header.warnings else ""
    return (f"{header.sender} -> {header.receiver}, {header.document_type}, {header.process}, "
            f"C1 {header.country_c1}, instance {header.instance_identifier}{warnings}")


def _same_participant(header: Participant | None, sbdh: ParticipantId) -> bool:
    # Peppol identifier values are case-insensitive under iso6523-actorid-upis (peppol-commons lower-cases them).
    if header is None or header.scheme is None:
        return False
    return header.scheme.lower() == sbdh.scheme.lower() and header.value.lower() == sbdh.value.lower()


def cross_check(um: UserMessage, sbdh: Sbdh) -> None:
    """The SBDH must say what the ebMS header says: participants, document type and process (EBMS:0004)."""
    for name, header, envelope in (("originalSender", um.original_sender, sbdh.sender),
                                   ("finalRecipient", um.final_recipient, sbdh.receiver)):
        if not _same_participant(header, envelope):
            raise As4Error(OTHER, f"the {name} property names {header!s} but the SBDH names {envelope.uri}; "
                                  "they must be the same participant")
    action = f"{sbdh.document_type.scheme}::{sbdh.document_type.value}"
    if um.action != action:
        raise As4Error(OTHER, f"eb:Action is {um.action!r} but the SBDH DOCUMENTID is {action!r}; the Action must "
                              "be the document type identifier of the SBDH")
    if (um.service_type, um.service) != (sbdh.process.scheme, sbdh.process.value):
        raise As4Error(OTHER, f"eb:Service is {um.service!r} (type {um.service_type!r}) but the SBDH PROCESSID is "
                              f"{sbdh.process.value!r} (scheme {sbdh.process.scheme!r}); they must be the same "
                              "process")


def _cross_check(o: Opening) -> str:
    assert o.user_message is not None and o.sbdh is not None
    cross_check(o.user_message, o.sbdh)
    return "the SBDH names the participants, document type and process of the ebMS header"


# --------------------------------------------------------------------------- the tuple

TRANSPORT = Step("transport", _transport)
SOAP = Step("soap", _soap, {"mime": None})
SIGNATURE_POLICY = Step("signature-policy", _signature_policy, {"root": None})
DECRYPTION = Step("decryption", _decryption, {"mime": None, "root": None})
SIGNATURE = Step("signature", _signature, {"root": None, "policy_passed": None, "clear": None})
CERTIFICATE = Step("certificate", _certificate, {"root": None, "signer": "no signer certificate to check",
                                                 "check_signer": "not checked (no trust anchors given)"})

INBOUND_STEPS: tuple[Step, ...] = (
    TRANSPORT,
    SOAP,
    SIGNATURE_POLICY,
    Step("envelope", _envelope, {"root": None}),
    Step("profile", _profile, {"user_message": None, "mime": None}),
    DECRYPTION,
    SIGNATURE,
    Step("timestamp", _timestamp, {"root": None}),
    CERTIFICATE,
    Step("sender", _sender, {"signer": None, "user_message": None}),
    Step("payload", _payload, {"user_message": None, "clear": None, "mime": None}),
    Step("sbdh", _sbdh, {"payload": None}),
    Step("cross-check", _cross_check, {"user_message": None, "sbdh": None}),
)


# --------------------------------------------------------------------------- describing keys, for the reports


def recipients(root: etree._Element) -> list[x509.Certificate | None]:
    """The certificates the message's xenc:EncryptedKeys name (None for one not given as a BinarySecurityToken)."""
    security = _security(root)
    if security is None:
        return []
    return [token_certificate(security, key) for key in security.findall(f"{{{ns.XENC}}}EncryptedKey")]


def recipient_names(root: etree._Element) -> list[str]:
    return [describe(c) if c is not None else "a certificate not given as a BinarySecurityToken"
            for c in recipients(root)]


def encrypted_for(root: etree._Element) -> str:
    return ", ".join(recipient_names(root)) or "nobody (no xenc:EncryptedKey)"


def describe(cert: x509.Certificate) -> str:
    return f"{cert.subject.rfc4514_string()}, serial {cert.serial_number:#x}"


def signature_element(root: etree._Element | None) -> etree._Element | None:
    """The ds:Signature of the wsse:Security header, if the message has one."""
    security = _security(root) if root is not None else None
    return security.find(f"{{{ns.DS}}}Signature") if security is not None else None


def claimed_signer(root: etree._Element) -> x509.Certificate | None:
    """The BinarySecurityToken certificate the ds:Signature's KeyInfo points at, unverified (to describe it)."""
    security, signature = _security(root), signature_element(root)
    return token_certificate(security, signature) if security is not None and signature is not None else None


def _security(root: etree._Element) -> etree._Element | None:
    """The wsse:Security header block, tolerating any SOAP version (for describing only)."""
    header = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == "Header"), None)
    return header.find(f"{{{ns.WSSE}}}Security") if header is not None else None


def token_certificate(security: etree._Element, owner: etree._Element) -> x509.Certificate | None:
    """The BST certificate that `owner`'s (ds:Signature's or xenc:EncryptedKey's) KeyInfo points at, to describe it.

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
