"""Peppol Business Message Envelope 2.0 (SBDH): read, derive from UBL, write (shared/docs/as4.md section 6).

Reading follows peppol-commons' PeppolSBDHDataReader: structural problems that its XML binding rejects
give `invalid-sbd-xml`, then the value checks run in its order and the first failure's id is the error
code (the message lists every failure). Only the header and the start tag of the business document
are parsed, so a 100 MB payload is never held in memory. Writing puts our serialised header in front
of the business document bytes exactly as received, without re-serialising them.
"""

from __future__ import annotations

import codecs
import io
import pyexpat
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import IO

from lxml import etree

from base.safexml import XmlError, iterparse
from smp.identifiers import (
    DOCTYPE_SCHEME,
    PARTICIPANT_SCHEME,
    PROCESS_SCHEME,
    DocumentTypeId,
    IdentifierError,
    ParticipantId,
    ProcessId,
)

SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
# Non-XML payloads are wrapped in BinaryContent / TextContent of this namespace
ENVELOPE_NS = "http://peppol.eu/xsd/ticc/envelope/1.0"
NON_XML_PAYLOADS = ("BinaryContent", "TextContent")
HEADER_VERSION = "1.0"

SCOPE_DOCUMENTID = "DOCUMENTID"
SCOPE_PROCESSID = "PROCESSID"
SCOPE_COUNTRY_C1 = "COUNTRY_C1"
SCOPE_MLS_TO = "MLS_TO"
SCOPE_MLS_TYPE = "MLS_TYPE"
MLS_TYPES = ("ALWAYS_SEND", "FAILURE_ONLY")
# Reserved by the envelope spec for future use; peppol-commons ignores them with a warning
RESERVED_SCOPES = frozenset({"COUNTRY_C4", "TECHNICAL_VALIDATION_URL", "TECHNICAL_VALIDATION_REQUIRED"})
_KNOWN_SCOPES = frozenset({SCOPE_DOCUMENTID, SCOPE_PROCESSID, SCOPE_COUNTRY_C1, SCOPE_MLS_TO, SCOPE_MLS_TYPE})

SPIS_ICD = "0242"
_COUNTRY_RE = re.compile(r"[A-Z0-9][A-Z0-9]")
_SPID_RE = re.compile(r"[0-9]{6}(-[0-9A-Z_]{3,12}(\.[0-9A-Z\-._~]{3,24})?)?", re.IGNORECASE)
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?", re.ASCII)

UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
UBL_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
UBL_ROOTS = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "Invoice",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "CreditNote",
}
UBL_VERSION = "2.1"

# XML 1.0 Char minus CR, which parsers turn into LF (the value would not read back the same)
_XML_TEXT_RE = re.compile("[\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_COPY_CHUNK = 64 * 1024
_MAX_PROLOG = 4096


class SbdhError(ValueError):
    """The SBD/SBDH is not acceptable; `code` is the peppol-commons error id (e.g. `missing-country-c1`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Sbdh:
    sender: ParticipantId
    receiver: ParticipantId
    document_type: DocumentTypeId
    process: ProcessId
    country_c1: str
    instance_identifier: str
    creation: datetime
    standard: str
    type_version: str
    type: str
    mls_to: ParticipantId | None = None
    mls_type: str | None = None
    additional: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()


# --- reading --------------------------------------------------------------------------------------

def _q(local: str) -> str:
    return f"{{{SBDH_NS}}}{local}"


def _split_tag(element: etree._Element) -> tuple[str, str]:
    """(namespace, local name) of an element. Not etree.QName: it raises on the odd names that libxml2
    lets through after a namespace error (e.g. ':x:Invoice')."""
    tag = str(element.tag)
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _describe(element: etree._Element) -> str:
    namespace, local = _split_tag(element)
    return f"<{local}> in namespace {namespace!r}" if namespace else f"<{local}>"


@dataclass(frozen=True)
class _Payload:
    namespace: str
    local_name: str
    mime_type: str | None

    @property
    def is_xml(self) -> bool:
        return not (self.namespace == ENVELOPE_NS and self.local_name in NON_XML_PAYLOADS)


def _payload_of(element: etree._Element) -> _Payload:
    namespace, local = _split_tag(element)
    return _Payload(namespace, local, element.get("mimeType"))


def _read_envelope(stream: IO[bytes]) -> tuple[etree._Element, _Payload]:
    """Parse up to the start tag of the business document; return the header element and the payload root."""
    depth = 0
    header: etree._Element | None = None
    for event, element in iterparse(stream, events=("start", "end")):
        if event == "end":
            depth -= 1
            if depth == 1 and element.tag == _q("StandardBusinessDocumentHeader"):
                header = element
            continue
        depth += 1
        if depth == 1:
            if element.getroottree().docinfo.doctype:
                raise SbdhError("invalid-sbd-xml", "the SBD has a DOCTYPE declaration, which is not accepted")
            if element.tag != _q("StandardBusinessDocument"):
                raise SbdhError("invalid-sbd-xml", f"the root element is {_describe(element)}, expected "
                                                   f"<StandardBusinessDocument> in namespace {SBDH_NS!r}")
        elif depth == 2:
            if header is not None:
                return header, _payload_of(element)
            if element.tag != _q("StandardBusinessDocumentHeader"):
                raise SbdhError("missing-sbdh", f"the first element inside <StandardBusinessDocument> is "
                                                f"{_describe(element)}, expected <StandardBusinessDocumentHeader>")
    if header is None:
        raise SbdhError("missing-sbdh", "<StandardBusinessDocument> has no <StandardBusinessDocumentHeader>")
    raise SbdhError("invalid-sbd-xml", "<StandardBusinessDocument> has no business document after the header")


def _binding_error(path: str, problem: str) -> SbdhError:
    return SbdhError("invalid-sbd-xml", f"SBDH {path} {problem}")


def _children(parent: etree._Element, local: str) -> list[etree._Element]:
    return parent.findall(_q(local))


def _join(path: str, local: str) -> str:
    return f"{path}/{local}" if path else local


def _one(parent: etree._Element, local: str, path: str) -> etree._Element:
    found = _children(parent, local)
    if len(found) != 1:
        raise _binding_error(_join(path, local), "is missing" if not found else f"occurs {len(found)} times, "
                                                                                "expected once")
    return found[0]


def _text(element: etree._Element, path: str) -> str:
    if len(element) and any(isinstance(child.tag, str) for child in element):
        raise _binding_error(path, "must contain text only, not child elements")
    return "".join(element.itertext()).strip()


def _one_text(parent: etree._Element, local: str, path: str) -> str:
    return _text(_one(parent, local, path), _join(path, local))


def _optional_text(parent: etree._Element, local: str, path: str) -> str | None:
    found = _children(parent, local)
    if len(found) > 1:
        raise _binding_error(_join(path, local), f"occurs {len(found)} times, expected at most once")
    return _text(found[0], _join(path, local)) if found else None


def parse_xs_datetime(text: str) -> tuple[datetime, bool]:
    """Parse an xs:dateTime; returns (aware datetime, whether the text carried a time zone).

    A missing zone is read as UTC: the envelope spec requires a zone but peppol-commons (and so
    phase4) does not check it, and a receiver should not reject what the reference accepts.
    """
    match = _DATETIME_RE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not an xs:dateTime (e.g. 2026-11-21T10:15:00Z)")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone is None or zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if offset > timedelta(hours=14):
            raise ValueError(f"{text!r} has a time zone offset beyond 14 hours")
        tz = timezone(sign * offset)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz), zone is not None


def format_xs_datetime(value: datetime) -> str:
    """xs:dateTime with `Z` for UTC, else the numeric offset; fraction only when present."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("the creation time must carry a time zone")
    if offset % timedelta(minutes=1):
        raise ValueError("xs:dateTime offsets are whole minutes")
    text = (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    if not offset:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass
class _Scope:
    index: int
    type: str
    instance_identifier: str
    identifier: str | None

    @property
    def path(self) -> str:
        return f"BusinessScope/Scope[{self.index}]"


@dataclass
class _Problems:
    errors: list[tuple[str, str]]
    warnings: list[str]

    def error(self, code: str, message: str) -> None:
        self.errors.append((code, message))


def _read_party(header: etree._Element, role: str, problems: _Problems) -> ParticipantId | None:
    parties = _children(header, role)
    if not parties:
        raise _binding_error(role, "is missing")
    code = role.lower()
    if len(parties) != 1:
        problems.error(f"invalid-{code}-count", f"SBDH has {len(parties)} <{role}> elements, exactly 1 is required")
    identifier = _one(parties[0], "Identifier", f"{role}[1]")
    value = _text(identifier, f"{role}[1]/Identifier")
    authority = identifier.get("Authority")
    pid = None
    if authority != PARTICIPANT_SCHEME:
        problems.error(f"invalid-{code}-authority",
                       f"SBDH {role}/Identifier/@Authority is {authority!r}, expected {PARTICIPANT_SCHEME!r}")
    if not value:
        problems.error(f"invalid-{code}-value", f"SBDH {role}/Identifier is empty")
    elif authority:
        try:
            pid = ParticipantId(authority, value)
        except IdentifierError as exc:
            problems.error(f"invalid-{code}-value", f"SBDH {role}/Identifier: {exc}")
    return pid if authority == PARTICIPANT_SCHEME else None


def _read_scopes(header: etree._Element) -> list[_Scope] | None:
    scopes_parent = _children(header, "BusinessScope")
    if not scopes_parent:
        return None
    if len(scopes_parent) > 1:
        raise _binding_error("BusinessScope", f"occurs {len(scopes_parent)} times, expected at most once")
    elements = _children(scopes_parent[0], "Scope")
    if not elements:
        raise _binding_error("BusinessScope", "has no <Scope>")
    scopes = []
    for index, element in enumerate(elements, start=1):
        path = f"BusinessScope/Scope[{index}]"
        scopes.append(_Scope(index, _one_text(element, "Type", path), _one_text(element, "InstanceIdentifier", path),
                             _optional_text(element, "Identifier", path)))
    return scopes


@dataclass
class _ScopeValues:
    document_type: DocumentTypeId | None = None
    process: ProcessId | None = None
    country_c1: str | None = None
    mls_to: ParticipantId | None = None
    mls_type: str | None = None


def _mls_to(scope: _Scope, problems: _Problems) -> ParticipantId | None:
    """MLS_TO must be a 0242 SPID; anything else is only a warning and MLS then goes to C2's SPID."""
    try:
        pid = ParticipantId(scope.identifier or "", scope.instance_identifier)
    except IdentifierError as exc:
        problems.warnings.append(f"invalid-mls-to: SBDH {scope.path} is ignored: {exc}")
        return None
    if pid.scheme != PARTICIPANT_SCHEME or pid.icd != SPIS_ICD or not _SPID_RE.fullmatch(pid.local_id):
        problems.warnings.append(
            f"invalid-mls-to: SBDH {scope.path} {pid.uri!r} is not a Peppol service provider ID "
            f"({PARTICIPANT_SCHEME}::{SPIS_ICD}:<6 digits>); MLS goes to the sending access point's SPID")
        return None
    return pid


def _apply_scope(scope: _Scope, found: _ScopeValues, seen: set[str], problems: _Problems,
                 additional: list[tuple[str, str]]) -> None:
    kind = scope.type
    if kind in _KNOWN_SCOPES and kind in seen:
        code = {SCOPE_DOCUMENTID: "invalid-document-type-identifier", SCOPE_PROCESSID: "invalid-process-identifier",
                SCOPE_COUNTRY_C1: "invalid-country-c1", SCOPE_MLS_TYPE: "invalid-mls-type"}.get(kind)
        if code is None:
            problems.warnings.append(f"invalid-mls-to: SBDH {scope.path} repeats MLS_TO; only the first is used")
        else:
            problems.error(code, f"SBDH {scope.path} repeats the {kind} scope; it must occur once")
        return
    seen.add(kind)
    if kind == SCOPE_DOCUMENTID:
        if not scope.instance_identifier:
            problems.error("invalid-document-type-identifier", f"SBDH {scope.path}/InstanceIdentifier (DOCUMENTID) "
                                                               "is empty")
            return
        try:
            found.document_type = DocumentTypeId(
                DOCTYPE_SCHEME if scope.identifier is None else scope.identifier, scope.instance_identifier)
        except IdentifierError as exc:
            problems.error("invalid-document-type-identifier", f"SBDH {scope.path}: {exc}")
    elif kind == SCOPE_PROCESSID:
        if not scope.instance_identifier:
            problems.error("invalid-process-identifier", f"SBDH {scope.path}/InstanceIdentifier (PROCESSID) is empty")
            return
        try:
            found.process = ProcessId(
                PROCESS_SCHEME if scope.identifier is None else scope.identifier, scope.instance_identifier)
        except IdentifierError as exc:
            problems.error("invalid-process-identifier", f"SBDH {scope.path}: {exc}")
    elif kind == SCOPE_COUNTRY_C1:
        if _COUNTRY_RE.fullmatch(scope.instance_identifier):
            found.country_c1 = scope.instance_identifier
        else:
            problems.error("invalid-country-c1", f"SBDH {scope.path} COUNTRY_C1 {scope.instance_identifier!r} is not "
                                                 "an ISO 3166-1 alpha-2 code in upper case (e.g. SE)")
    elif kind == SCOPE_MLS_TO:
        found.mls_to = _mls_to(scope, problems)
    elif kind == SCOPE_MLS_TYPE:
        if scope.instance_identifier in MLS_TYPES:
            found.mls_type = scope.instance_identifier
        else:
            problems.error("invalid-mls-type", f"SBDH {scope.path} MLS_TYPE {scope.instance_identifier!r} must be "
                                               f"one of {', '.join(MLS_TYPES)} (case-sensitive)")
    elif kind in RESERVED_SCOPES:
        problems.warnings.append(f"SBDH {scope.path} uses the reserved scope type {kind!r}; it is ignored")
    elif not kind:
        problems.warnings.append(f"SBDH {scope.path} has an empty Type; it is ignored")
    elif any(name == kind for name, _ in additional):
        problems.warnings.append(f"SBDH {scope.path} repeats the additional scope {kind!r}; only the first is used")
    else:
        additional.append((kind, scope.instance_identifier))


def _check_document_identification(ident: etree._Element, found: _ScopeValues, payload: _Payload,
                                   problems: _Problems) -> tuple[str, str, str, str, datetime]:
    path = "DocumentIdentification"
    standard = _one_text(ident, "Standard", path)
    type_version = _one_text(ident, "TypeVersion", path)
    instance_identifier = _one_text(ident, "InstanceIdentifier", path)
    doc_type = _one_text(ident, "Type", path)
    created_text = _one_text(ident, "CreationDateAndTime", path)
    try:
        creation, zoned = parse_xs_datetime(created_text)
    except ValueError as exc:
        raise _binding_error(f"{path}/CreationDateAndTime", f"is invalid: {exc}") from None
    if not zoned:
        problems.warnings.append(f"SBDH {path}/CreationDateAndTime {created_text!r} has no time zone; UTC assumed")

    if payload.is_xml and found.document_type is not None:
        doctype_value = found.document_type.value
        if standard != payload.namespace or not standard or not doctype_value.startswith(standard):
            problems.error("invalid-standard",
                           f"SBDH {path}/Standard {standard!r} must equal the business document's root namespace "
                           f"{payload.namespace!r} and start the document type {doctype_value!r}")
        if not type_version or ":" in type_version or not doctype_value.endswith(":" + type_version):
            problems.error("invalid-type-version",
                           f"SBDH {path}/TypeVersion {type_version!r} must be the version at the end of the "
                           f"document type {doctype_value!r}, without ':'")
    if payload.is_xml and doc_type != payload.local_name:
        problems.error("invalid-type", f"SBDH {path}/Type {doc_type!r} must equal the business document's root "
                                       f"element name {payload.local_name!r}")
    if not instance_identifier:
        problems.error("invalid-instance-identifier", f"SBDH {path}/InstanceIdentifier is empty")
    return standard, type_version, instance_identifier, doc_type, creation


def _check_payload(payload: _Payload, problems: _Problems) -> None:
    if payload.namespace == SBDH_NS:
        problems.error("invalid-business-message", "the business document is itself a Standard Business Document; "
                                                   "nested envelopes are not allowed")
    elif not payload.is_xml and not (payload.mime_type or "").strip():
        problems.error("invalid-business-message", f"the {payload.local_name} payload has no mimeType attribute")


def _validate(header: etree._Element, payload: _Payload) -> Sbdh:
    problems = _Problems([], [])
    header_version = _one_text(header, "HeaderVersion", "")
    ident = _one(header, "DocumentIdentification", "")
    if header_version != HEADER_VERSION:
        problems.error("invalid-header-version",
                       f"SBDH HeaderVersion is {header_version!r}, expected {HEADER_VERSION!r}")
    sender = _read_party(header, "Sender", problems)
    receiver = _read_party(header, "Receiver", problems)

    found = _ScopeValues()
    additional: list[tuple[str, str]] = []
    scopes = _read_scopes(header)
    if scopes is None:
        problems.error("business-scope-missing", "SBDH has no BusinessScope (DOCUMENTID, PROCESSID and COUNTRY_C1 "
                                                 "are required)")
    else:
        if len(scopes) < 3:
            problems.error("invalid-scope-count", f"SBDH BusinessScope has {len(scopes)} Scope elements, at least 3 "
                                                  "are required (DOCUMENTID, PROCESSID, COUNTRY_C1)")
        seen: set[str] = set()
        for scope in scopes:
            _apply_scope(scope, found, seen, problems, additional)
        for kind, code in ((SCOPE_DOCUMENTID, "missing-document-type-identifier"),
                           (SCOPE_PROCESSID, "missing-process-identifier"),
                           (SCOPE_COUNTRY_C1, "missing-country-c1")):
            if kind not in seen:
                problems.error(code, f"SBDH BusinessScope has no {kind} scope")

    _check_payload(payload, problems)
    standard, type_version, instance_identifier, doc_type, creation = _check_document_identification(
        ident, found, payload, problems)

    if problems.errors:
        code = problems.errors[0][0]
        raise SbdhError(code, "; ".join(message for _, message in problems.errors))
    if sender is None or receiver is None or found.document_type is None or found.process is None \
            or found.country_c1 is None:
        raise AssertionError("every missing mandatory SBDH value must have produced an error")
    return Sbdh(sender=sender, receiver=receiver, document_type=found.document_type, process=found.process,
                country_c1=found.country_c1, instance_identifier=instance_identifier, creation=creation,
                standard=standard, type_version=type_version, type=doc_type, mls_to=found.mls_to,
                mls_type=found.mls_type, additional=tuple(additional), warnings=tuple(problems.warnings))


def parse_sbdh(source: bytes | IO[bytes]) -> Sbdh:
    """Read and check the SBDH of a Standard Business Document (bytes or a binary stream).

    Raises SbdhError with the peppol-commons error id; warnings (e.g. invalid MLS_TO) are in `.warnings`.
    A stream is read only up to a chunk past the business document's start tag; it is left positioned
    somewhere after that, so re-open or seek before reading the payload.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    try:
        header, payload = _read_envelope(stream)
    except (etree.XMLSyntaxError, XmlError) as exc:
        raise SbdhError("invalid-sbd-xml", f"the SBD is not well-formed XML: {exc}") from None
    return _validate(header, payload)


# --- deriving from UBL ----------------------------------------------------------------------------

def _ubl_party(root_children: dict[str, etree._Element], role: str) -> etree._Element:
    element = root_children.get(role)
    if element is None:
        raise SbdhError("invalid-business-message", f"cac:{role} is missing from the UBL document")
    return element


def _endpoint(party: etree._Element, role: str, code: str) -> ParticipantId:
    endpoint = party.find(f"{{{UBL_CAC}}}Party/{{{UBL_CBC}}}EndpointID")
    if endpoint is None or not (endpoint.text or "").strip():
        raise SbdhError(code, f"cbc:EndpointID of the {role} is missing")
    scheme_id = (endpoint.get("schemeID") or "").strip()
    if not scheme_id:
        raise SbdhError(code, f"cbc:EndpointID of the {role} has no schemeID (the ICD, e.g. 0007)")
    try:
        return ParticipantId.of(scheme_id, endpoint.text or "")
    except IdentifierError as exc:
        raise SbdhError(code, f"cbc:EndpointID of the {role}: {exc}") from exc


def _ubl_header_fields(document: bytes) -> tuple[tuple[str, str], dict[str, etree._Element]]:
    """Root name and the root children we need, streaming and stopping after the customer party."""
    wanted = {f"{{{UBL_CBC}}}CustomizationID": "CustomizationID", f"{{{UBL_CBC}}}ProfileID": "ProfileID",
              f"{{{UBL_CAC}}}AccountingSupplierParty": "AccountingSupplierParty",
              f"{{{UBL_CAC}}}AccountingCustomerParty": "AccountingCustomerParty"}
    root_name: tuple[str, str] | None = None
    children: dict[str, etree._Element] = {}
    depth = 0
    try:
        for event, element in iterparse(io.BytesIO(document), events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 1:
                    if element.getroottree().docinfo.doctype:
                        raise SbdhError("invalid-business-message", "the UBL document has a DOCTYPE declaration")
                    root_name = _split_tag(element)
                    if UBL_ROOTS.get(root_name[0]) != root_name[1]:
                        raise SbdhError("invalid-business-message",
                                        f"the document root is {_describe(element)}; an SBDH can only be derived "
                                        "from a UBL 2.1 Invoice or CreditNote (send other documents as a complete SBD)")
                continue
            depth -= 1
            if depth == 1:
                short = wanted.get(element.tag)
                if short is not None:
                    children.setdefault(short, element)
                    if short == "AccountingCustomerParty":
                        break
                else:
                    element.clear()
    except (etree.XMLSyntaxError, XmlError) as exc:
        raise SbdhError("invalid-business-message", f"the UBL document is not well-formed XML: {exc}") from None
    if root_name is None:
        raise SbdhError("invalid-business-message", "the UBL document is empty")
    return root_name, children


def _now_milliseconds() -> datetime:
    # phase4 writes millisecond precision; more digits only make the header longer
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def sbdh_from_ubl(document: bytes, *, country_c1: str | None = None, instance_identifier: str | None = None,
                  creation: datetime | None = None) -> Sbdh:
    """Derive the SBDH of a BIS (UBL 2.1) invoice or credit note from the document itself.

    Sender/receiver: EndpointID@schemeID of AccountingSupplierParty/AccountingCustomerParty (strict Peppol
    identifier rules); document type: root namespace, root name, CustomizationID and UBL version 2.1;
    process: ProfileID; C1 country: the supplier's postal address unless given.
    """
    (namespace, local_name), children = _ubl_header_fields(document)
    customization_element = children.get("CustomizationID")
    customization = (customization_element.text or "").strip() if customization_element is not None else ""
    if not customization:
        raise SbdhError("missing-document-type-identifier", "cbc:CustomizationID of the UBL document is missing")
    profile_element = children.get("ProfileID")
    profile = (profile_element.text or "").strip() if profile_element is not None else ""
    if not profile:
        raise SbdhError("missing-process-identifier", "cbc:ProfileID of the UBL document is missing")
    supplier = _ubl_party(children, "AccountingSupplierParty")
    customer = _ubl_party(children, "AccountingCustomerParty")
    sender = _endpoint(supplier, "AccountingSupplierParty", "invalid-sender-value")
    receiver = _endpoint(customer, "AccountingCustomerParty", "invalid-receiver-value")
    try:
        document_type = DocumentTypeId(
            DOCTYPE_SCHEME, f"{namespace}::{local_name}##{customization}::{UBL_VERSION}")
    except IdentifierError as exc:
        raise SbdhError("invalid-document-type-identifier", f"cbc:CustomizationID gives no valid document type: "
                                                            f"{exc}") from exc
    try:
        process = ProcessId(PROCESS_SCHEME, profile)
    except IdentifierError as exc:
        raise SbdhError("invalid-process-identifier", f"cbc:ProfileID gives no valid process: {exc}") from exc
    if country_c1 is None:
        code = supplier.findtext(f"{{{UBL_CAC}}}Party/{{{UBL_CAC}}}PostalAddress/{{{UBL_CAC}}}Country/"
                                 f"{{{UBL_CBC}}}IdentificationCode")
        if not (code or "").strip():
            raise SbdhError("missing-country-c1", "cac:PostalAddress/cac:Country/cbc:IdentificationCode of the "
                                                  "AccountingSupplierParty is missing; give the C1 country explicitly")
        country_c1 = (code or "").strip()
    if not _COUNTRY_RE.fullmatch(country_c1):
        raise SbdhError("invalid-country-c1", f"C1 country {country_c1!r} is not an ISO 3166-1 alpha-2 code in "
                                              "upper case (e.g. SE)")
    return Sbdh(
        sender=sender, receiver=receiver, document_type=document_type, process=process, country_c1=country_c1,
        instance_identifier=instance_identifier if instance_identifier is not None else str(uuid.uuid4()),
        creation=creation if creation is not None else _now_milliseconds(),
        standard=namespace, type_version=UBL_VERSION, type=local_name,
    )


# --- writing --------------------------------------------------------------------------------------

def _check_writable(header: Sbdh) -> None:
    """Refuse to write an envelope that a Peppol receiver would reject."""
    for role, pid in (("sender", header.sender), ("receiver", header.receiver)):
        if pid.scheme != PARTICIPANT_SCHEME:
            raise SbdhError(f"invalid-{role}-authority", f"the {role} scheme is {pid.scheme!r}, expected "
                                                         f"{PARTICIPANT_SCHEME!r}")
    if not _COUNTRY_RE.fullmatch(header.country_c1):
        raise SbdhError("invalid-country-c1", f"C1 country {header.country_c1!r} is not an ISO 3166-1 alpha-2 code")
    if not header.instance_identifier.strip():
        raise SbdhError("invalid-instance-identifier", "the SBDH InstanceIdentifier is empty")
    try:
        format_xs_datetime(header.creation)
    except ValueError as exc:
        raise SbdhError("invalid-creation-date-time", f"the SBDH creation time cannot be written: {exc}") from None
    doctype_value = header.document_type.value
    if not header.standard or not doctype_value.startswith(header.standard):
        raise SbdhError("invalid-standard", f"Standard {header.standard!r} does not start the document type "
                                            f"{doctype_value!r}")
    if not header.type_version or ":" in header.type_version or not doctype_value.endswith(":" + header.type_version):
        raise SbdhError("invalid-type-version", f"TypeVersion {header.type_version!r} is not the version at the end "
                                                f"of the document type {doctype_value!r}")
    if header.mls_to is not None and (header.mls_to.scheme != PARTICIPANT_SCHEME or header.mls_to.icd != SPIS_ICD
                                      or not _SPID_RE.fullmatch(header.mls_to.local_id)):
        raise SbdhError("invalid-mls-to", f"MLS_TO {header.mls_to.uri!r} is not a Peppol service provider ID "
                                          f"({PARTICIPANT_SCHEME}::{SPIS_ICD}:<6 digits>)")
    if header.mls_type is not None and header.mls_type not in MLS_TYPES:
        raise SbdhError("invalid-mls-type", f"MLS_TYPE {header.mls_type!r} must be one of {', '.join(MLS_TYPES)}")
    names = [name for name, _ in header.additional]
    for name in names:
        if not name.strip() or name in _KNOWN_SCOPES or name in RESERVED_SCOPES or names.count(name) > 1:
            raise SbdhError("invalid-additional-attribute",
                            f"additional scope {name!r} must be non-empty, unique and not a reserved scope type")


def _header_xml(header: Sbdh) -> tuple[bytes, bytes]:
    """The envelope up to and including the header, and the closing tag of the envelope."""
    root = etree.Element(_q("StandardBusinessDocument"), nsmap={"sh": SBDH_NS})
    sbdh = etree.SubElement(root, _q("StandardBusinessDocumentHeader"))

    def add(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, _q(local))
        if text is not None:
            if not _XML_TEXT_RE.fullmatch(text):
                raise SbdhError("invalid-sbd-xml", f"the value {text!r} for SBDH <{local}> contains characters "
                                                   "that XML cannot carry unchanged (control characters or CR)")
            child.text = text.strip()
        return child

    add(sbdh, "HeaderVersion", HEADER_VERSION)
    for role, pid in (("Sender", header.sender), ("Receiver", header.receiver)):
        add(add(sbdh, role), "Identifier", pid.value).set("Authority", pid.scheme)
    ident = add(sbdh, "DocumentIdentification")
    add(ident, "Standard", header.standard)
    add(ident, "TypeVersion", header.type_version)
    add(ident, "InstanceIdentifier", header.instance_identifier)
    add(ident, "Type", header.type)
    add(ident, "CreationDateAndTime", format_xs_datetime(header.creation))
    scopes = add(sbdh, "BusinessScope")

    def scope(kind: str, value: str, identifier: str | None = None) -> None:
        element = add(scopes, "Scope")
        add(element, "Type", kind)
        add(element, "InstanceIdentifier", value)
        if identifier is not None:
            add(element, "Identifier", identifier)

    scope(SCOPE_DOCUMENTID, header.document_type.value, header.document_type.scheme)
    scope(SCOPE_PROCESSID, header.process.value, header.process.scheme)
    scope(SCOPE_COUNTRY_C1, header.country_c1)
    if header.mls_to is not None:
        scope(SCOPE_MLS_TO, header.mls_to.value, header.mls_to.scheme)
    if header.mls_type is not None:
        scope(SCOPE_MLS_TYPE, header.mls_type)
    for name, value in header.additional:
        scope(name, value)
    text = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
    closing = b"</sh:StandardBusinessDocument>\n"
    if not text.endswith(closing):
        raise AssertionError("lxml serialised the envelope root unexpectedly")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text[: -len(closing)], closing


_BOM_UTF8 = b"\xef\xbb\xbf"
_OTHER_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\xfe\xff", b"\xff\xfe")
_XML_DECL_RE = re.compile(
    rb"<\?xml\s+version\s*=\s*(['\"])(?P<version>[^'\"]*)\1"
    rb"(?:\s+encoding\s*=\s*(['\"])(?P<encoding>[^'\"]*)\3)?"
    rb"(?:\s+standalone\s*=\s*(['\"])(?:yes|no)\5)?\s*\?>")


def _prolog_length(start: bytes) -> int:
    """Bytes to drop from the front of the business document (BOM, XML declaration); rejects non-UTF-8."""
    if start.startswith(_OTHER_BOMS) or start[:1] == b"\x00" or start[1:2] == b"\x00":
        raise SbdhError("invalid-business-message", "the business document is UTF-16 or UTF-32 encoded; "
                                                    "only UTF-8 documents can be enveloped")
    skip = len(_BOM_UTF8) if start.startswith(_BOM_UTF8) else 0
    if not start.startswith(b"<?xml", skip) or start[skip + 5:skip + 6] not in (b" ", b"\t", b"\r", b"\n"):
        return skip
    declaration = _XML_DECL_RE.match(start, skip)
    if declaration is None:
        raise SbdhError("invalid-business-message", "the business document's XML declaration is malformed")
    if declaration.group("version") != b"1.0":
        raise SbdhError("invalid-business-message", "the business document is not XML 1.0")
    encoding = (declaration.group("encoding") or b"UTF-8").decode("ascii", "replace")
    if encoding.upper().replace("_", "-") not in ("UTF-8", "UTF8"):
        raise SbdhError("invalid-business-message", f"the business document is encoded in {encoding}; "
                                                    "only UTF-8 documents can be enveloped")
    return declaration.end()


class _CopyingReader:
    """Feeds the business document to the parser and copies it, minus its prolog, to the output."""

    def __init__(self, head: bytes, rest: IO[bytes], skip: int, out: IO[bytes]) -> None:
        self._head = head
        self._rest = rest
        self._skip = skip
        self._out = out

    def read(self, size: int = _COPY_CHUNK) -> bytes:
        if self._head:
            chunk, self._head = self._head[:size], self._head[size:]
        else:
            chunk = self._rest.read(size)
        if self._skip:
            dropped = min(self._skip, len(chunk))
            self._out.write(chunk[dropped:])
            self._skip -= dropped
        else:
            self._out.write(chunk)
        return chunk


def _read_prolog(document: IO[bytes]) -> bytes:
    head = document.read(_COPY_CHUNK)
    while b"?>" not in head[:_MAX_PROLOG] and len(head) < _MAX_PROLOG:
        more = document.read(_COPY_CHUNK)
        if not more:
            break
        head += more
    return head


def _check_payload_root(header: Sbdh, element: etree._Element) -> None:
    if element.getroottree().docinfo.doctype:
        raise SbdhError("invalid-business-message", "the business document has a DOCTYPE declaration")
    payload = _payload_of(element)
    problems = _Problems([], [])
    _check_payload(payload, problems)
    if problems.errors:
        raise SbdhError(*problems.errors[0])
    if not payload.is_xml:
        return
    if payload.namespace != header.standard:
        raise SbdhError("invalid-standard", f"the business document's root namespace is {payload.namespace!r} but "
                                            f"the SBDH Standard is {header.standard!r}")
    if payload.local_name != header.type:
        raise SbdhError("invalid-type", f"the business document's root element is {payload.local_name!r} but the "
                                        f"SBDH Type is {header.type!r}")


def _parse_and_release(reader: _CopyingReader) -> Iterator[tuple[str, etree._Element]]:
    """Parse the whole document (well-formedness) while dropping finished elements to keep memory flat."""
    for event, element in iterparse(reader, events=("start", "end")):
        yield event, element
        if event == "end":
            element.clear(keep_tail=True)
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]


def write_sbd(header: Sbdh, document_stream: IO[bytes], out_stream: IO[bytes]) -> None:
    """Stream the complete SBD: our header, then the UTF-8 business document bytes unchanged (no prolog).

    The document is parsed on the way through, so a malformed one or one whose root does not match the
    header raises SbdhError; the output written so far must then be discarded.
    """
    _check_writable(header)
    opening, closing = _header_xml(header)  # before reading anything: a bad header costs no I/O
    head = _read_prolog(document_stream)
    skip = _prolog_length(head)
    out_stream.write(opening)
    reader = _CopyingReader(head, document_stream, skip, out_stream)
    root_seen = False
    try:
        for event, element in _parse_and_release(reader):
            if event == "start" and not root_seen:
                root_seen = True
                _check_payload_root(header, element)
    except (etree.XMLSyntaxError, XmlError) as exc:
        raise SbdhError("invalid-business-message", f"the business document is not well-formed XML: {exc}") from None
    if not root_seen:
        raise SbdhError("invalid-business-message", "the business document is empty")
    out_stream.write(b"\n" + closing)


def build_sbd(header: Sbdh, document: bytes) -> bytes:
    """The complete StandardBusinessDocument for a business document held in memory."""
    out = io.BytesIO()
    write_sbd(header, io.BytesIO(document), out)
    return out.getvalue()


# --- extracting the business document -------------------------------------------------------------
#
# The inbox serves the business document without its envelope. Stored SBDs can be 100 MB or more, so the
# document is located by byte offsets in one streaming parse and then copied out of the stored bytes; it is
# never parsed into a tree nor re-serialised. lxml reports no byte offsets, so this parse uses expat (the
# stdlib's), hardened like base.safexml: a DOCTYPE is refused, which leaves no way to declare an entity.

_EXTRACT_CHUNK = 64 * 1024
_EXPAT_SEPARATOR = " "
_SBDH_PREFIX = SBDH_NS + _EXPAT_SEPARATOR
_XML_DECLARATION_UTF8 = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_UTF8_CODECS = frozenset({"utf-8", "ascii"})


@dataclass(frozen=True)
class DocumentSpan:
    """Where the business document lies inside an SBD, as byte offsets into the SBD.

    `namespaces` are the envelope's namespace declarations the document relies on without declaring them
    itself (`(prefix, uri)`, prefix "" for the default namespace): extraction adds them to the document's
    start tag so the document means the same outside the envelope.
    """

    start: int
    start_tag_end: int
    end: int
    encoding: str
    namespaces: tuple[tuple[str, str], ...]


class _Locator:
    """expat handlers that find the business document: the element after the header, inside the envelope."""

    def __init__(self) -> None:
        self.parser = pyexpat.ParserCreate(namespace_separator=_EXPAT_SEPARATOR)
        self.parser.namespace_prefixes = True
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_doctype
        self.parser.XmlDeclHandler = self._xml_declaration
        self.parser.StartNamespaceDeclHandler = self._namespace
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CommentHandler = self._other
        self.parser.ProcessingInstructionHandler = self._other
        self.parser.StartCdataSectionHandler = self._other
        self.declared_encoding: str | None = None
        self.depth = 0
        self.pending: list[tuple[str, str]] = []
        self.envelope_namespaces: dict[str, str] = {}
        self.document_namespaces: dict[str, str] = {}
        self.header_seen = False
        self.start: int | None = None
        self.start_tag_end: int | None = None
        self.end: int | None = None
        # the offset to take from the next event: the end of a tag is where the next event starts
        self.capture: str | None = None
        # envelope prefixes bound to the SBDH namespace that the document's own elements or attributes use
        self.uses_sbdh_prefixes: set[str] = set()

    def _refuse_doctype(self, *_args: object) -> None:
        raise SbdhError("invalid-sbd-xml", "the SBD has a DOCTYPE declaration, which is not accepted")

    def _xml_declaration(self, _version: str, encoding: str | None, _standalone: int) -> None:
        self.declared_encoding = encoding

    def _capture_next(self, field: str) -> None:
        self.capture = field
        # text events cost a call each; they are only wanted while an offset waits for the next event
        self.parser.CharacterDataHandler = self._other

    def _mark(self) -> None:
        if self.capture is not None:
            setattr(self, self.capture, self.parser.CurrentByteIndex)
            self.capture = None
            self.parser.CharacterDataHandler = None

    def _other(self, *_args: object) -> None:
        self._mark()

    def _namespace(self, prefix: str | None, uri: str | None) -> None:
        self._mark()
        self.pending.append((prefix or "", uri or ""))

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self._mark()
        self.depth += 1
        declared, self.pending = self.pending, []
        if self.depth == 1:
            if name.split(_EXPAT_SEPARATOR)[:2] != [SBDH_NS, "StandardBusinessDocument"]:
                raise SbdhError("invalid-sbd-xml", "the root element is not <StandardBusinessDocument> in namespace "
                                                   f"{SBDH_NS!r}")
            self.envelope_namespaces = dict(declared)
        elif self.depth == 2:
            if not self.header_seen:
                if name.split(_EXPAT_SEPARATOR)[:2] != [SBDH_NS, "StandardBusinessDocumentHeader"]:
                    raise SbdhError("missing-sbdh", "the first element inside <StandardBusinessDocument> is not "
                                                    "<StandardBusinessDocumentHeader>")
                self.header_seen = True
            elif self.start is None:
                self.start = self.parser.CurrentByteIndex
                self._capture_next("start_tag_end")
                self.document_namespaces = dict(declared)
            else:
                raise SbdhError("invalid-sbd-xml", "<StandardBusinessDocument> holds more than one business document")
        if self.start is not None and self.end is None:
            self._note_sbdh_use(name, attributes)

    def _note_sbdh_use(self, name: str, attributes: dict[str, str]) -> None:
        for qualified in (name, *attributes):
            if qualified.startswith(_SBDH_PREFIX):
                parts = qualified.split(_EXPAT_SEPARATOR)
                self.uses_sbdh_prefixes.add(parts[2] if len(parts) == 3 else "")

    def _end(self, _name: str) -> None:
        self._mark()
        self.depth -= 1
        if self.depth == 1 and self.start is not None and self.end is None:
            self._capture_next("end")

    def feed(self, stream: IO[bytes]) -> None:
        while True:
            chunk = stream.read(_EXTRACT_CHUNK)
            if chunk is None:
                raise BlockingIOError("the SBD stream had no data ready (non-blocking); pass a blocking stream")
            self.parser.Parse(chunk, not chunk)
            if not chunk:
                return


def _codec(head: bytes, declared: str | None) -> str:
    if head.startswith(b"\xff\xfe"):
        return "utf-16-le"
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be"
    try:
        return codecs.lookup(declared or "utf-8").name
    except LookupError:
        raise SbdhError("invalid-sbd-xml", f"the SBD declares the unknown encoding {declared!r}") from None


def locate_business_document(sbd_stream: IO[bytes]) -> DocumentSpan:
    """Find the business document in a complete SBD by parsing it once, streaming (memory stays flat).

    Reads the stream to its end from where it stands; the offsets count from that position. Raises SbdhError
    (`invalid-sbd-xml`) for a malformed SBD, a DOCTYPE, or an envelope without exactly one business document.
    """
    head = b""
    while len(head) < 4 and (more := sbd_stream.read(4 - len(head))):
        head += more
    locator = _Locator()
    try:
        locator.parser.Parse(head, False)
        locator.feed(sbd_stream)
    except pyexpat.ExpatError as exc:
        raise SbdhError("invalid-sbd-xml", f"the SBD is not well-formed XML: {exc}") from None
    except LookupError as exc:  # expat asks Python's codecs for encodings it does not know itself
        raise SbdhError("invalid-sbd-xml", f"the SBD declares an unknown encoding: {exc}") from None
    if locator.start is None or locator.start_tag_end is None or locator.end is None:
        what = "header" if not locator.header_seen else "business document after the header"
        raise SbdhError("invalid-sbd-xml", f"<StandardBusinessDocument> has no {what}")
    own = locator.document_namespaces
    needed = tuple(
        (prefix, uri) for prefix, uri in sorted(locator.envelope_namespaces.items())
        if prefix not in own and (uri != SBDH_NS or prefix in locator.uses_sbdh_prefixes)
    )
    return DocumentSpan(start=locator.start, start_tag_end=locator.start_tag_end, end=locator.end,
                        encoding=_codec(head, locator.declared_encoding), namespaces=needed)


def _attribute_value(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
            .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;"))


def _declarations(span: DocumentSpan) -> str:
    return "".join(f' xmlns{":" + prefix if prefix else ""}="{_attribute_value(uri)}"'
                   for prefix, uri in span.namespaces)


def _start_tag(raw: bytes, span: DocumentSpan) -> bytes:
    tag = raw.decode(span.encoding)
    if not span.namespaces:
        return tag.encode("utf-8")
    name_end = next((i for i, char in enumerate(tag) if i and char in " \t\r\n/>"), len(tag))
    return (tag[:name_end] + _declarations(span) + tag[name_end:]).encode("utf-8")


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    while size:
        data = stream.read(size)
        if not data:
            raise SbdhError("invalid-sbd-xml", "the SBD ended before the business document did (was it changed?)")
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def iter_business_document(sbd_stream: IO[bytes], span: DocumentSpan) -> Iterator[bytes]:
    """The business document as UTF-8 XML with a declaration, in chunks, copied from a seekable SBD stream.

    The document's bytes are those of the envelope, unchanged when the SBD is UTF-8 (Peppol's recommendation)
    and transcoded otherwise; only the start tag gains the envelope namespace declarations it relies on.
    Comments and processing instructions between the header and the document are not part of it.
    """
    sbd_stream.seek(span.start)
    start_tag = _read_exactly(sbd_stream, span.start_tag_end - span.start)
    yield _XML_DECLARATION_UTF8 + _start_tag(start_tag, span)
    remaining = span.end - span.start_tag_end
    decoder = None
    if span.encoding not in _UTF8_CODECS:
        decoder = codecs.getincrementaldecoder(span.encoding)()
    while remaining:
        chunk = _read_exactly(sbd_stream, min(remaining, _EXTRACT_CHUNK))
        remaining -= len(chunk)
        yield chunk if decoder is None else decoder.decode(chunk, final=not remaining).encode("utf-8")


def document_length(span: DocumentSpan) -> int | None:
    """Bytes `iter_business_document` yields, when known without reading (UTF-8 SBDs); for Content-Length."""
    if span.encoding not in _UTF8_CODECS:
        return None
    return len(_XML_DECLARATION_UTF8) + span.end - span.start + len(_declarations(span).encode("utf-8"))


def extract_business_document(sbd_stream: IO[bytes], out: IO[bytes]) -> DocumentSpan:
    """Write the business document of a complete SBD (a seekable binary stream) to `out`; see the two above."""
    origin = sbd_stream.tell()
    span = locate_business_document(sbd_stream)
    shifted = DocumentSpan(origin + span.start, origin + span.start_tag_end, origin + span.end, span.encoding,
                           span.namespaces)
    for chunk in iter_business_document(sbd_stream, shifted):
        out.write(chunk)
    return shifted
