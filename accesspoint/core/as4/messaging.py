"""eb:Messaging of Peppol AS4: build and parse UserMessages, Receipts and Error signals (shared/docs/as4.md 2, 4, 5).

Pure functions over lxml trees and small frozen value objects; no crypto here (wssec signs what we build, and the
empty ``wsse:Security`` header block we create first is where it writes). Untrusted bytes go through
``base.safexml`` (``parse_envelope_bytes``); signed trees are never re-serialised by this module.

Participants (originalSender / finalRecipient) are kept as a small ``Participant(scheme, value)`` tuple, not as
``smp`` identifier objects: this module only transports them, and identifier semantics (case-insensitive compare of
``iso6523-actorid-upis``) belong to the code that cross-checks them against the SBDH.

Which failure gets which ebMS code (phase4's choice wherever the Peppol documents are silent):

================================================================  =========  ============================
failure                                                           code       where phase4 does it
================================================================  =========  ============================
not XML, not a SOAP envelope, no Header/Body, no eb:Messaging,    EBMS:0009  HTTP 400 text (phase4
unprocessed mustUnderstand header block                           http 400   ``setBadRequest``)
eb:Messaging not schema-valid (required element missing, bad      EBMS:0009  JAXB/XSD read of Messaging
Timestamp, empty PartProperties); MessageId not ``left@right``;              (MessageId form: Oxalis)
two eb:Messaging or two wsse:Security header blocks
UserMessage in SOAP 1.1                                           EBMS:0010  Peppol PMode is SOAP 1.2
eb:Messaging of a UserMessage without ``S12:mustUnderstand=true`` EBMS:0009  Peppol spec requires it
0 or >1 UserMessage, UserMessage + SignalMessage, >1 PartyId,     EBMS:0003  header processing
unknown MPC, PartInfo href not ``cid:``, CompressionType not gzip,
CompressionType without MimeType, unknown CharacterSet,
attachment Content-ID missing / not the n-th href, SOAP Body not
empty (Peppol payloads are attachments), a SignalMessage with
neither Receipt nor Error
more attachments than PartInfos, or PartInfos without attachment  EBMS:0011  header processing
RefToMessageId on a UserMessage, PartyId @type missing/wrong,     EBMS:0010  PeppolCompatibilityValidator
AgreementRef value / @type / @pmode, Service/@type missing,
empty Action, originalSender/finalRecipient missing or repeated,
trackingIdentifier, PullRequest signal
no attachment at all, originalSender/finalRecipient without       EBMS:0004  Peppol servlet SPI
@type, PartyId not a seat ID ``P[A-Z]{2}[0-9]{6}``
receipt without RefToMessageId / NRI, or for another message      EBMS:0302  sender-side receipt check
================================================================  =========  ============================

as4.md sections 2 and 5 list ">1 PartyId" under EBMS:0010, but phase4's header processing
(``SoapHeaderElementProcessorExtractEbms3Messaging``) answers EBMS:0003 before its profile validator runs, so a
phase4 peer sees EBMS:0003; we do the same. The seat-ID form is checked by phase4's servlet SPI (EBMS:0004, as4.md
section 4 table), after the profile validator has already required one typed PartyId (EBMS:0010).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal, NamedTuple

from lxml import etree

from accesspoint.core.as4 import ns
from accesspoint.core.as4.errors import (
    INVALID_HEADER,
    PMODE_MISMATCH,
    VALUE_INCONSISTENT,
    As4Error,
)
from base import safexml

COMPRESSION_GZIP = "application/gzip"
PROPERTY_ORIGINAL_SENDER = "originalSender"
PROPERTY_FINAL_RECIPIENT = "finalRecipient"
PROPERTY_TRACKING_IDENTIFIER = "trackingIdentifier"
PART_MIME_TYPE = "MimeType"
PART_COMPRESSION_TYPE = "CompressionType"
PART_CHARACTER_SET = "CharacterSet"
# Used when a caller builds a signal without naming its own host; callers should pass their configured domain.
DEFAULT_MESSAGE_ID_DOMAIN = "peppol-ap"

# RFC 2822 msg-id without the angle brackets: dot-atom "@" (dot-atom | domain-literal), as Oxalis validates it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
MESSAGE_ID = re.compile(rf"{_DOT_ATOM}@(?:{_DOT_ATOM}|\[[^\[\]\\\s]*\])")
_NCNAME_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_MUST_UNDERSTAND_TRUE = {ns.S12: ("true", "1"), ns.S11: ("1", "true")}

Kind = Literal["user-message", "receipt", "error"]


def _q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


WSU_ID = _q(ns.WSU, "Id")


def _children(parent: etree._Element, namespace: str, local: str) -> list[etree._Element]:
    return [c for c in parent if c.tag == _q(namespace, local)]


# ---------------------------------------------------------------------------------------------------------------
# identifiers and timestamps


def new_message_id(domain: str) -> str:
    """A fresh ebMS MessageId ``<uuid4>@<domain>`` (RFC 2822 msg-id without ``<>``, as phase4 and Oxalis send)."""
    message_id = f"{uuid.uuid4()}@{domain}"
    if not MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"domain {domain!r} cannot form an RFC 2822 message id (use host-name characters)")
    return message_id


def is_valid_message_id(message_id: str) -> bool:
    """True when the MessageId is ``left@right`` in RFC 2822 dot-atom form (what Oxalis accepts)."""
    return MESSAGE_ID.fullmatch(message_id) is not None


def new_wsu_id(prefix: str = "id") -> str:
    """A fresh ``wsu:Id`` value ``<prefix>-<uuid4>``; the prefix keeps it an NCName (never starts with a digit)."""
    if not _NCNAME_PREFIX.fullmatch(prefix):
        raise ValueError(f"wsu:Id prefix {prefix!r} must start with a letter or '_' and contain only [A-Za-z0-9._-]")
    return f"{prefix}-{uuid.uuid4()}"


def format_timestamp(dt: datetime) -> str:
    """UTC xs:dateTime with exactly three fraction digits and ``Z`` (Domibus rejects trimmed fractions)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware; a naive datetime has no defined UTC instant")
    u = dt.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond // 1000:03d}Z")


def parse_timestamp(text: str) -> datetime:
    """Parse an xs:dateTime as other stacks send it and return an aware UTC datetime.

    Tolerates offsets, any number of fraction digits (nanoseconds are truncated to microseconds) and a missing zone,
    which is read as UTC (phase4 writes UTC; old ph-as4 signals omit the ``Z``). Raises ValueError otherwise.
    """
    m = _TIMESTAMP.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not an xs:dateTime like 2026-01-29T15:39:03.805Z")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7), m.group(8)
    microsecond = int((fraction or "0").ljust(6, "0")[:6])
    if zone is None or zone == "Z":
        tz: timezone = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if offset > timedelta(hours=14):
            raise ValueError(f"{text!r} has a time-zone offset beyond ±14:00")
        tz = timezone(sign * offset)
    try:
        return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{text!r} is not a valid date and time: {exc}") from None


# ---------------------------------------------------------------------------------------------------------------
# value objects


class Participant(NamedTuple):
    """A participant as carried in originalSender/finalRecipient: ``type`` attribute (scheme) and text (value)."""

    scheme: str | None
    value: str

    def __str__(self) -> str:
        return f"{self.scheme}::{self.value}" if self.scheme else self.value


class PartyId(NamedTuple):
    value: str
    type: str | None


class Property(NamedTuple):
    name: str
    value: str
    type: str | None = None


@dataclass(frozen=True)
class PartInfo:
    """One eb:PartInfo. For Peppol: ``href="cid:<Content-ID>"``, MimeType before compression, gzip compression."""

    href: str
    mime_type: str | None
    compression_type: str | None
    charset: str | None
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def content_id(self) -> str | None:
        """The Content-ID the href points at (without ``cid:``), or None for a non-attachment href."""
        return self.href[4:] if self.href.startswith("cid:") else None

    @classmethod
    def attachment(cls, content_id: str, mime_type: str = "application/xml",
                   compression_type: str | None = COMPRESSION_GZIP, charset: str | None = None) -> PartInfo:
        return cls(href=f"cid:{content_id}", mime_type=mime_type, compression_type=compression_type, charset=charset)


@dataclass(frozen=True, kw_only=True)
class UserMessage:
    """The content of one eb:UserMessage plus the wsu:Ids of eb:Messaging and S12:Body that the signature covers.

    ``from_party``/``to_party`` are the seat IDs (first PartyId); any further PartyIds as received are kept in
    ``extra_from_parties``/``extra_to_parties`` so the profile check can reject them. ``extra_properties`` holds the
    message properties other than the first originalSender/finalRecipient, in document order.
    """

    message_id: str
    timestamp: datetime
    conversation_id: str
    from_party: str
    to_party: str
    service: str
    service_type: str | None
    action: str
    original_sender: Participant | None
    final_recipient: Participant | None
    parts: tuple[PartInfo, ...]
    messaging_id: str | None
    body_id: str | None
    from_party_type: str | None = ns.PARTY_TYPE_AP
    to_party_type: str | None = ns.PARTY_TYPE_AP
    from_role: str = ns.ROLE_INITIATOR
    to_role: str = ns.ROLE_RESPONDER
    agreement_ref: str | None = ns.AGREEMENT
    agreement_ref_type: str | None = None
    agreement_ref_pmode: str | None = None
    ref_to_message_id: str | None = None
    mpc: str | None = None
    extra_from_parties: tuple[PartyId, ...] = ()
    extra_to_parties: tuple[PartyId, ...] = ()
    extra_properties: tuple[Property, ...] = ()

    @property
    def is_ping(self) -> bool:
        """The ebMS test service/action (a Peppol connectivity test, never a business document)."""
        return self.service == ns.TEST_SERVICE and self.action == ns.TEST_ACTION


@dataclass(frozen=True)
class ReceiptSignal:
    """An eb:Receipt signal. ``nri_references`` are the ds:Reference elements of the NonRepudiationInformation (in the
    parsed tree, not copies); ``extra`` are other children of eb:Receipt (phase4's marker, a legacy wrapped message)."""

    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None
    nri_references: tuple[etree._Element, ...]
    extra: tuple[etree._Element, ...] = ()


@dataclass(frozen=True)
class ErrorDetail:
    """One eb:Error. ``severity`` is normalised to "failure" or "warning" (other stacks send Failure or error)."""

    code: str
    severity: str
    short_description: str | None
    category: str | None
    origin: str | None
    ref_to_message_in_error: str | None
    description: str | None
    detail: str | None

    @property
    def is_failure(self) -> bool:
        return self.severity != "warning"

    def __str__(self) -> str:
        label = " ".join(w for w in (self.code or "(no errorCode)", self.short_description) if w)
        text = f"{label} ({self.severity})"
        words = [w for w in (self.description, self.detail) if w]
        return f"{text}: {' / '.join(words)}" if words else text


@dataclass(frozen=True)
class ErrorSignal:
    """An ebMS Error signal; ``soap_fault`` is the reason text of a SOAP Fault in the Body, if any."""

    message_id: str
    timestamp: datetime | None
    ref_to_message_id: str | None
    errors: tuple[ErrorDetail, ...]
    soap_fault: str | None = None

    @property
    def is_failure(self) -> bool:
        return any(e.is_failure for e in self.errors)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.errors)

    def has_detail(self, text: str) -> bool:
        """True when an eb:ErrorDetail contains ``text`` (stacks append words to ``PEPPOL:NOT_SERVICED``)."""
        return any(e.detail is not None and text in e.detail for e in self.errors)

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)


@dataclass(frozen=True)
class ParsedEnvelope:
    """A received envelope split into its parts; exactly one of user_message / receipt / error matches ``kind``
    (an error signal that also carries a receipt has both, and kind "error")."""

    envelope: etree._Element
    soap_version: Literal["1.1", "1.2"]
    header: etree._Element
    messaging: etree._Element
    body: etree._Element
    security: etree._Element | None
    kind: Kind
    user_message: UserMessage | None = None
    receipt: ReceiptSignal | None = None
    error: ErrorSignal | None = None


# ---------------------------------------------------------------------------------------------------------------
# building


def _sub(parent: etree._Element, namespace: str, local: str, text: str | None = None,
         attrib: dict[str, str] | None = None) -> etree._Element:
    el = etree.SubElement(parent, _q(namespace, local), attrib=attrib or {})
    if text is not None:
        el.text = text
    return el


def _envelope(messaging_id: str, body_id: str, nsmap: dict[str, str]) -> tuple[etree._Element, etree._Element]:
    """S12:Envelope with an empty ``wsse:Security`` first (for signing), ``eb:Messaging`` and an empty Body."""
    if not messaging_id or not body_id:
        raise ValueError("eb:Messaging and S12:Body need wsu:Id values (the signature references them)")
    envelope = etree.Element(_q(ns.S12, "Envelope"), nsmap={"S12": ns.S12})
    header = _sub(envelope, ns.S12, "Header")
    security = etree.SubElement(header, _q(ns.WSSE, "Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(_q(ns.S12, "mustUnderstand"), "true")
    messaging = etree.SubElement(header, _q(ns.EB, "Messaging"), nsmap={**nsmap, "eb": ns.EB, "wsu": ns.WSU})
    messaging.set(_q(ns.S12, "mustUnderstand"), "true")
    messaging.set(WSU_ID, messaging_id)
    # phase4 declares wsu on the Body itself, so the Body's exclusive c14n needs nothing from its ancestors.
    body = etree.SubElement(envelope, _q(ns.S12, "Body"), nsmap={"wsu": ns.WSU})
    body.set(WSU_ID, body_id)
    return envelope, messaging


def security_header(envelope: etree._Element) -> etree._Element:
    """The ``wsse:Security`` header block of an envelope (built here or parsed)."""
    found = [block for soap in (ns.S12, ns.S11) for header in _children(envelope, soap, "Header")
             for block in _children(header, ns.WSSE, "Security")]
    if len(found) != 1:
        raise ValueError(f"envelope has {len(found)} wsse:Security header blocks, expected exactly one")
    return found[0]


def _message_info(parent: etree._Element, message_id: str, timestamp: datetime, ref_to: str | None) -> None:
    info = _sub(parent, ns.EB, "MessageInfo")
    _sub(info, ns.EB, "Timestamp", format_timestamp(timestamp))
    _sub(info, ns.EB, "MessageId", message_id)
    if ref_to is not None:
        _sub(info, ns.EB, "RefToMessageId", ref_to)


def _party(parent: etree._Element, local: str, parties: Sequence[PartyId], role: str) -> None:
    el = _sub(parent, ns.EB, local)
    for party in parties:
        _sub(el, ns.EB, "PartyId", party.value, {"type": party.type} if party.type is not None else None)
    _sub(el, ns.EB, "Role", role)


def _property(parent: etree._Element, prop: Property) -> None:
    attrib = {"name": prop.name}
    if prop.type is not None:
        attrib["type"] = prop.type
    _sub(parent, ns.EB, "Property", prop.value, attrib)


def build_user_message(um: UserMessage) -> etree._Element:
    """The complete unsigned SOAP 1.2 envelope of a Peppol UserMessage, elements in as4.md section 2 order."""
    envelope, messaging = _envelope(um.messaging_id or "", um.body_id or "", {})
    user = _sub(messaging, ns.EB, "UserMessage", attrib={"mpc": um.mpc} if um.mpc is not None else None)
    _message_info(user, um.message_id, um.timestamp, um.ref_to_message_id)

    party_info = _sub(user, ns.EB, "PartyInfo")
    _party(party_info, "From", [PartyId(um.from_party, um.from_party_type), *um.extra_from_parties], um.from_role)
    _party(party_info, "To", [PartyId(um.to_party, um.to_party_type), *um.extra_to_parties], um.to_role)

    collab = _sub(user, ns.EB, "CollaborationInfo")
    if um.agreement_ref is not None:
        attrib = {k: v for k, v in (("type", um.agreement_ref_type), ("pmode", um.agreement_ref_pmode))
                  if v is not None}
        _sub(collab, ns.EB, "AgreementRef", um.agreement_ref, attrib)
    _sub(collab, ns.EB, "Service", um.service, {"type": um.service_type} if um.service_type is not None else None)
    _sub(collab, ns.EB, "Action", um.action)
    _sub(collab, ns.EB, "ConversationId", um.conversation_id)

    props = [Property(name, p.value, p.scheme) for name, p in
             ((PROPERTY_ORIGINAL_SENDER, um.original_sender), (PROPERTY_FINAL_RECIPIENT, um.final_recipient))
             if p is not None]
    props.extend(um.extra_properties)
    if props:
        message_props = _sub(user, ns.EB, "MessageProperties")
        for prop in props:
            _property(message_props, prop)

    if um.parts:
        payload = _sub(user, ns.EB, "PayloadInfo")
        for part in um.parts:
            _part_info(payload, part)
    return envelope


def _part_info(parent: etree._Element, part: PartInfo) -> None:
    el = _sub(parent, ns.EB, "PartInfo", attrib={"href": part.href})
    props = [(n, v) for n, v in ((PART_MIME_TYPE, part.mime_type), (PART_COMPRESSION_TYPE, part.compression_type),
                                 (PART_CHARACTER_SET, part.charset)) if v is not None]
    props.extend(part.properties)
    if props:  # an empty PartProperties is schema-invalid (phase4 PR #302)
        part_props = _sub(el, ns.EB, "PartProperties")
        for name, value in props:
            _property(part_props, Property(name, value))


def new_user_message(*, domain: str, from_party: str, to_party: str, service: str, service_type: str | None,
                     action: str, original_sender: Participant, final_recipient: Participant,
                     parts: Sequence[PartInfo], now: datetime, conversation_id: str | None = None) -> UserMessage:
    """A Peppol UserMessage with fresh MessageId, ConversationId, wsu:Ids and a millisecond UTC timestamp."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware; a naive datetime has no defined UTC instant")
    stamp = now.astimezone(UTC)
    return UserMessage(
        message_id=new_message_id(domain),
        timestamp=stamp.replace(microsecond=stamp.microsecond // 1000 * 1000),
        conversation_id=conversation_id if conversation_id is not None else new_message_id(domain),
        from_party=from_party, to_party=to_party, service=service, service_type=service_type, action=action,
        original_sender=original_sender, final_recipient=final_recipient, parts=tuple(parts),
        messaging_id=new_wsu_id("msg"), body_id=new_wsu_id("body"),
    )


def _signal_envelope(ref_to_message_id: str | None, message_id: str | None, timestamp: datetime,
                     domain: str, nsmap: dict[str, str]) -> tuple[etree._Element, etree._Element]:
    envelope, messaging = _envelope(new_wsu_id("msg"), new_wsu_id("body"), nsmap)
    signal = _sub(messaging, ns.EB, "SignalMessage")
    _message_info(signal, message_id or new_message_id(domain), timestamp, ref_to_message_id)
    return envelope, signal


def build_receipt(ref_to_message_id: str, nri_references: Sequence[etree._Element], *, timestamp: datetime,
                  message_id: str | None = None, domain: str = DEFAULT_MESSAGE_ID_DOMAIN) -> etree._Element:
    """Unsigned non-repudiation receipt for the UserMessage ``ref_to_message_id``.

    Every ds:Reference of the received SignedInfo is deep-copied verbatim (Transforms, InclusiveNamespaces,
    DigestMethod, DigestValue; same order) into its own ebbp:MessagePartNRInformation.
    """
    if not ref_to_message_id:
        raise ValueError("a receipt must name the MessageId it acknowledges (RefToMessageId)")
    if not nri_references:
        raise ValueError("a non-repudiation receipt needs the ds:Reference elements of the received signature")
    for ref in nri_references:
        if ref.tag != _q(ns.DS, "Reference"):
            raise ValueError(f"NRI entries must be ds:Reference elements, got {ref.tag}")
    envelope, signal = _signal_envelope(ref_to_message_id, message_id, timestamp, domain,
                                        {"ebbp": ns.EBBP, "ds": ns.DS})
    receipt = _sub(signal, ns.EB, "Receipt")
    nri = _sub(receipt, ns.EBBP, "NonRepudiationInformation")
    for ref in nri_references:
        part = _sub(nri, ns.EBBP, "MessagePartNRInformation")
        copied = copy.deepcopy(ref)
        copied.tail = None
        part.append(copied)
    return envelope


def build_error(errors: Sequence[As4Error], ref_to_message_id: str | None, *, timestamp: datetime,
                message_id: str | None = None, domain: str = DEFAULT_MESSAGE_ID_DOMAIN) -> etree._Element:
    """Unsigned ebMS Error signal: lower-case severity, phase4's shortDescription table, eb:Description (English
    human text) and eb:ErrorDetail (``PEPPOL:NOT_SERVICED`` exactly, when that is the detail)."""
    if not errors:
        raise ValueError("an ebMS Error signal needs at least one error")
    envelope, signal = _signal_envelope(ref_to_message_id, message_id, timestamp, domain, {})
    for err in errors:
        info = err.info
        attrib = {"category": info.category, "errorCode": err.code, "severity": info.severity,
                  "shortDescription": info.short_description}
        if ref_to_message_id is not None:
            attrib["refToMessageInError"] = ref_to_message_id
        el = _sub(signal, ns.EB, "Error", attrib=attrib)
        _sub(el, ns.EB, "Description", err.description, {_q("http://www.w3.org/XML/1998/namespace", "lang"): "en"})
        _sub(el, ns.EB, "ErrorDetail", err.detail)
    return envelope


# ---------------------------------------------------------------------------------------------------------------
# parsing


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    return (c for c in parent if isinstance(c.tag, str))


def _one(parent: etree._Element, local: str, where: str) -> etree._Element:
    found = _children(parent, ns.EB, local)
    if len(found) != 1:
        problem = "is missing" if not found else f"appears {len(found)} times"
        raise As4Error(INVALID_HEADER, f"eb:{local} in {where} {problem}; the ebMS schema requires exactly one")
    return found[0]


def _optional(parent: etree._Element, local: str, where: str) -> etree._Element | None:
    found = _children(parent, ns.EB, local)
    if len(found) > 1:
        raise As4Error(INVALID_HEADER, f"eb:{local} appears {len(found)} times in {where}; at most one is allowed")
    return found[0] if found else None


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _required_text(parent: etree._Element, local: str, where: str) -> str:
    value = _text(_one(parent, local, where))
    if not value:
        raise As4Error(INVALID_HEADER, f"eb:{local} in {where} is empty")
    return value


def parse_envelope_bytes(data: bytes) -> ParsedEnvelope:
    """Parse received SOAP bytes with the hardened parser; malformed XML is an HTTP 400 like in phase4."""
    try:
        root = safexml.parse_bytes(data)
    except safexml.XmlError as exc:
        raise As4Error(INVALID_HEADER, f"the SOAP part is not acceptable XML: {exc}", http_status=400) from None
    return parse_envelope(root)


def parse_envelope(root: etree._Element) -> ParsedEnvelope:
    """Split a SOAP envelope into its eb:Messaging content: one UserMessage, or one Receipt or Error signal.

    Envelope-level Peppol rules for UserMessages are enforced here (SOAP 1.2, ``mustUnderstand="true"`` on
    eb:Messaging); the value rules are in `check_peppol_user_message`. Signals from other stacks are read
    leniently: SOAP 1.1, no mustUnderstand, a Fault in the Body, odd severities, empty refToMessageInError.
    """
    soap = root.tag.partition("}")[0][1:] if isinstance(root.tag, str) else ""
    if soap not in (ns.S12, ns.S11) or etree.QName(root).localname != "Envelope":
        raise As4Error(INVALID_HEADER, f"the SOAP part's root element is {root.tag!s}, not a SOAP 1.2 Envelope",
                       http_status=400)
    headers = _children(root, soap, "Header")
    bodies = _children(root, soap, "Body")
    if len(headers) != 1 or len(bodies) != 1:
        raise As4Error(INVALID_HEADER, f"the SOAP Envelope has {len(headers)} Header and {len(bodies)} Body "
                                       "elements; exactly one of each is required", http_status=400)
    header, body = headers[0], bodies[0]

    messagings = _children(header, ns.EB, "Messaging")
    securities = _children(header, ns.WSSE, "Security")
    for block in _elements(header):
        if block.tag not in (_q(ns.EB, "Messaging"), _q(ns.WSSE, "Security")) and \
                (block.get(_q(soap, "mustUnderstand")) or "").strip() in _MUST_UNDERSTAND_TRUE[soap]:
            raise As4Error(INVALID_HEADER, f"SOAP header block {block.tag} is marked mustUnderstand, but this access "
                                           "point only processes wsse:Security and eb:Messaging", http_status=400)
    if not messagings:
        fault = _soap_fault(body, soap)
        hint = f" (the Body holds a SOAP Fault: {fault})" if fault is not None else ""
        raise As4Error(INVALID_HEADER, f"no eb:Messaging header block was found{hint}", http_status=400)
    if len(messagings) > 1:
        raise As4Error(INVALID_HEADER, f"{len(messagings)} eb:Messaging header blocks found; exactly one is allowed")
    if len(securities) > 1:
        raise As4Error(INVALID_HEADER, f"{len(securities)} wsse:Security header blocks found; Peppol uses exactly one")
    messaging = messagings[0]
    security = securities[0] if securities else None

    users = _children(messaging, ns.EB, "UserMessage")
    signals = _children(messaging, ns.EB, "SignalMessage")
    if len(users) + len(signals) != 1:
        raise As4Error(VALUE_INCONSISTENT, f"eb:Messaging holds {len(users)} UserMessage and {len(signals)} "
                                           "SignalMessage elements; exactly one message is allowed")

    def parsed(kind: Kind, **content: UserMessage | ReceiptSignal | ErrorSignal | None) -> ParsedEnvelope:
        return ParsedEnvelope(envelope=root, soap_version="1.2" if soap == ns.S12 else "1.1", header=header,
                              messaging=messaging, body=body, security=security, kind=kind, **content)  # type: ignore[arg-type]

    if users:
        if soap != ns.S12:
            raise As4Error(PMODE_MISMATCH, "the UserMessage uses SOAP 1.1; the Peppol AS4 profile requires SOAP 1.2")
        must_understand = messaging.get(_q(ns.S12, "mustUnderstand"))
        if must_understand != "true":
            shown = "missing" if must_understand is None else f"{must_understand!r}"
            raise As4Error(INVALID_HEADER, f'eb:Messaging needs S12:mustUnderstand="true" (it is {shown})')
        if any(True for _ in _elements(body)) or (body.text or "").strip():
            raise As4Error(VALUE_INCONSISTENT, "the SOAP Body of a Peppol UserMessage must be empty; the business "
                                               "document travels as the first MIME attachment")
        um = _parse_user_message(users[0], messaging, body)
        return parsed("user-message", user_message=um)

    signal = signals[0]
    message_id, timestamp_text, ref_to = _signal_info(signal)
    errors = _children(signal, ns.EB, "Error")
    receipts = _children(signal, ns.EB, "Receipt")
    receipt = None
    if receipts:
        try:
            stamp = parse_timestamp(timestamp_text)
        except ValueError as exc:
            raise As4Error(INVALID_HEADER, f"eb:Timestamp of the receipt: {exc}") from None
        receipt = _parse_receipt(receipts[0], message_id, stamp, ref_to)
    if errors:
        # phase4's sender: any eb:Error wins over a receipt in the same signal.
        err = _parse_error(errors, message_id, timestamp_text, ref_to, _soap_fault(body, soap))
        return parsed("error", receipt=receipt, error=err)
    if receipt is not None:
        return parsed("receipt", receipt=receipt)
    if _children(signal, ns.EB, "PullRequest"):
        raise As4Error(PMODE_MISMATCH, "eb:PullRequest signals are not used in Peppol (one-way push only)")
    raise As4Error(VALUE_INCONSISTENT, "the eb:SignalMessage holds neither an eb:Receipt nor an eb:Error")


def _signal_info(signal: etree._Element) -> tuple[str, str, str | None]:
    info = _one(signal, "MessageInfo", "eb:SignalMessage")
    message_id = _required_text(info, "MessageId", "eb:SignalMessage/eb:MessageInfo")
    timestamp = _text(_one(info, "Timestamp", "eb:SignalMessage/eb:MessageInfo"))
    ref_to = _text(_optional(info, "RefToMessageId", "eb:SignalMessage/eb:MessageInfo")) or None
    return message_id, timestamp, ref_to


def _parse_receipt(receipt: etree._Element, message_id: str, timestamp: datetime,
                   ref_to: str | None) -> ReceiptSignal:
    nri_elements = _children(receipt, ns.EBBP, "NonRepudiationInformation")
    references: list[etree._Element] = []
    if nri_elements:
        for part in _children(nri_elements[0], ns.EBBP, "MessagePartNRInformation"):
            references.extend(_children(part, ns.DS, "Reference"))
    extra = tuple(c for c in _elements(receipt) if not nri_elements or c is not nri_elements[0])
    return ReceiptSignal(message_id, timestamp, ref_to, tuple(references), extra)


def _parse_error(errors: Sequence[etree._Element], message_id: str, timestamp_text: str, ref_to: str | None,
                 fault: str | None) -> ErrorSignal:
    try:
        timestamp: datetime | None = parse_timestamp(timestamp_text)
    except ValueError:
        timestamp = None  # an error signal is still an error when its timestamp is unreadable
    details = []
    for el in errors:
        severity = (el.get("severity") or "").strip().lower()
        description = _children(el, ns.EB, "Description")
        detail = _children(el, ns.EB, "ErrorDetail")
        details.append(ErrorDetail(
            code=(el.get("errorCode") or "").strip(),
            severity="warning" if severity == "warning" else "failure",
            short_description=el.get("shortDescription"),
            category=el.get("category"),
            origin=el.get("origin"),
            ref_to_message_in_error=(el.get("refToMessageInError") or "").strip() or None,
            description=_text(description[0]) or None if description else None,
            detail=_text(detail[0]) or None if detail else None,
        ))
    return ErrorSignal(message_id, timestamp, ref_to, tuple(details), fault)


def _soap_fault(body: etree._Element, soap: str) -> str | None:
    faults = _children(body, soap, "Fault")
    if not faults:
        return None
    fault = faults[0]
    if soap == ns.S12:
        texts = [t.text or "" for t in fault.iterfind(f"{_q(ns.S12, 'Reason')}/{_q(ns.S12, 'Text')}")]
        codes = [c.text or "" for c in fault.iterfind(f"{_q(ns.S12, 'Code')}/{_q(ns.S12, 'Value')}")]
    else:
        texts = [t.text or "" for t in fault.iterfind("faultstring")]
        codes = [c.text or "" for c in fault.iterfind("faultcode")]
    reason = " ".join(t.strip() for t in texts if t.strip())
    code = " ".join(c.strip() for c in codes if c.strip())
    return ": ".join(p for p in (code, reason) if p) or "SOAP Fault without a reason"


def _parse_party(party_info: etree._Element, local: str) -> tuple[list[PartyId], str]:
    where = f"eb:PartyInfo/eb:{local}"
    el = _one(party_info, local, "eb:PartyInfo")
    ids = [PartyId(_text(p), p.get("type")) for p in _children(el, ns.EB, "PartyId")]
    if not ids:
        raise As4Error(INVALID_HEADER, f"{where} has no eb:PartyId; the sending/receiving AP's seat ID is required")
    return ids, _required_text(el, "Role", where)


def _parse_user_message(user: etree._Element, messaging: etree._Element, body: etree._Element) -> UserMessage:
    info = _one(user, "MessageInfo", "eb:UserMessage")
    stamp_text = _text(_one(info, "Timestamp", "eb:MessageInfo"))
    try:
        timestamp = parse_timestamp(stamp_text)
    except ValueError as exc:
        raise As4Error(INVALID_HEADER, f"eb:MessageInfo/eb:Timestamp: {exc}") from None
    message_id = _required_text(info, "MessageId", "eb:MessageInfo")
    ref_to = _text(_optional(info, "RefToMessageId", "eb:MessageInfo")) or None

    party_info = _one(user, "PartyInfo", "eb:UserMessage")
    from_ids, from_role = _parse_party(party_info, "From")
    to_ids, to_role = _parse_party(party_info, "To")

    where = "eb:CollaborationInfo"
    collab = _one(user, "CollaborationInfo", "eb:UserMessage")
    agreement = _optional(collab, "AgreementRef", where)
    service = _one(collab, "Service", where)
    action = _text(_one(collab, "Action", where))
    conversation_id = _text(_one(collab, "ConversationId", where))

    original_sender = final_recipient = None
    extra: list[Property] = []
    message_props = _optional(user, "MessageProperties", "eb:UserMessage")
    for prop in _properties(message_props, "eb:MessageProperties"):
        participant = Participant(prop.type, prop.value)
        if prop.name == PROPERTY_ORIGINAL_SENDER and original_sender is None:
            original_sender = participant
        elif prop.name == PROPERTY_FINAL_RECIPIENT and final_recipient is None:
            final_recipient = participant
        else:
            extra.append(prop)

    payload = _optional(user, "PayloadInfo", "eb:UserMessage")
    parts = tuple(_parse_part_info(p) for p in _children(payload, ns.EB, "PartInfo")) if payload is not None else ()

    return UserMessage(
        message_id=message_id, timestamp=timestamp, conversation_id=conversation_id,
        from_party=from_ids[0].value, from_party_type=from_ids[0].type, extra_from_parties=tuple(from_ids[1:]),
        to_party=to_ids[0].value, to_party_type=to_ids[0].type, extra_to_parties=tuple(to_ids[1:]),
        from_role=from_role, to_role=to_role,
        agreement_ref=_text(agreement) if agreement is not None else None,
        agreement_ref_type=agreement.get("type") if agreement is not None else None,
        agreement_ref_pmode=agreement.get("pmode") if agreement is not None else None,
        service=_text(service), service_type=service.get("type"), action=action,
        original_sender=original_sender, final_recipient=final_recipient, extra_properties=tuple(extra),
        parts=parts, ref_to_message_id=ref_to, mpc=user.get("mpc"),
        messaging_id=messaging.get(WSU_ID), body_id=body.get(WSU_ID),
    )


def _properties(container: etree._Element | None, where: str) -> list[Property]:
    if container is None:
        return []
    props = []
    for el in _children(container, ns.EB, "Property"):
        name = (el.get("name") or "").strip()
        if not name:
            raise As4Error(INVALID_HEADER, f"an eb:Property in {where} has no name attribute")
        props.append(Property(name, _text(el), el.get("type")))
    return props


def _parse_part_info(el: etree._Element) -> PartInfo:
    href = (el.get("href") or "").strip()
    where = f"eb:PartInfo href={href!r}"
    known: dict[str, str] = {}
    others: list[tuple[str, str]] = []
    container = _optional(el, "PartProperties", where)
    props = _properties(container, f"{where}/eb:PartProperties")
    if container is not None and not props:
        raise As4Error(INVALID_HEADER, f"{where} has an empty eb:PartProperties; the schema requires at least one "
                                       "eb:Property (send MimeType)")
    # phase4 matches these property names case-insensitively.
    canonical = {n.lower(): n for n in (PART_MIME_TYPE, PART_COMPRESSION_TYPE, PART_CHARACTER_SET)}
    for prop in props:
        name = canonical.get(prop.name.lower())
        if name is None:
            others.append((prop.name, prop.value))
        elif name in known:
            raise As4Error(VALUE_INCONSISTENT, f"{where} gives the part property {name} more than once")
        else:
            known[name] = prop.value
    return PartInfo(href=href, mime_type=known.get(PART_MIME_TYPE), compression_type=known.get(PART_COMPRESSION_TYPE),
                    charset=known.get(PART_CHARACTER_SET), properties=tuple(others))
