"""Reading an SBDH, following peppol-commons' PeppolSBDHDataReader (shared/docs/as4.md section 6).

Structural problems that its XML binding rejects give `invalid-sbd-xml`, then the value checks run in its order and
the first failure's id is the error code (the message lists every failure). Only the header and the start tag of the
business document are parsed, so a 100 MB payload is never held in memory.
"""


from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from lxml import etree

from accesspoint.core.sbdh.model import (
    COUNTRY_RE,
    ENVELOPE_NS,
    HEADER_VERSION,
    KNOWN_SCOPES,
    MLS_TYPES,
    NON_XML_PAYLOADS,
    RESERVED_SCOPES,
    SBDH_NS,
    SCOPE_COUNTRY_C1,
    SCOPE_DOCUMENTID,
    SCOPE_MLS_TO,
    SCOPE_MLS_TYPE,
    SCOPE_PROCESSID,
    SPID_RE,
    SPIS_ICD,
    Sbdh,
    SbdhError,
    parse_xs_datetime,
)
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


def q(local: str) -> str:
    return f"{{{SBDH_NS}}}{local}"


def split_tag(element: etree._Element) -> tuple[str, str]:
    """(namespace, local name) of an element. Not etree.QName: it raises on the odd names that libxml2
    lets through after a namespace error (e.g. ':x:Invoice')."""
    tag = str(element.tag)
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def describe(element: etree._Element) -> str:
    namespace, local = split_tag(element)
    return f"<{local}> in namespace {namespace!r}" if namespace else f"<{local}>"


@dataclass(frozen=True)
class _Payload:
    namespace: str
    local_name: str
    mime_type: str | None

    @property
    def is_xml(self) -> bool:
        return not (self.namespace == ENVELOPE_NS and self.local_name in NON_XML_PAYLOADS)


def payload_of(element: etree._Element) -> _Payload:
    namespace, local = split_tag(element)
    return _Payload(namespace, local, element.get("mimeType"))


def _read_envelope(stream: IO[bytes]) -> tuple[etree._Element, _Payload]:
    """Parse up to the start tag of the business document; return the header element and the payload root."""
    depth = 0
    header: etree._Element | None = None
    for event, element in iterparse(stream, events=("start", "end")):
        if event == "end":
            depth -= 1
            if depth == 1 and element.tag == q("StandardBusinessDocumentHeader"):
                header = element
            continue
        depth += 1
        if depth == 1:
            if element.getroottree().docinfo.doctype:
                raise SbdhError("invalid-sbd-xml", "the SBD has a DOCTYPE declaration, which is not accepted")
            if element.tag != q("StandardBusinessDocument"):
                raise SbdhError("invalid-sbd-xml", f"the root element is {describe(element)}, expected "
                                                   f"<StandardBusinessDocument> in namespace {SBDH_NS!r}")
        elif depth == 2:
            if header is not None:
                return header, payload_of(element)
            if element.tag != q("StandardBusinessDocumentHeader"):
                raise SbdhError("missing-sbdh", f"the first element inside <StandardBusinessDocument> is "
                                                f"{describe(element)}, expected <StandardBusinessDocumentHeader>")
    if header is None:
        raise SbdhError("missing-sbdh", "<StandardBusinessDocument> has no <StandardBusinessDocumentHeader>")
    raise SbdhError("invalid-sbd-xml", "<StandardBusinessDocument> has no business document after the header")


def _binding_error(path: str, problem: str) -> SbdhError:
    return SbdhError("invalid-sbd-xml", f"SBDH {path} {problem}")


def _children(parent: etree._Element, local: str) -> list[etree._Element]:
    return parent.findall(q(local))


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
class Problems:
    errors: list[tuple[str, str]]
    warnings: list[str]

    def error(self, code: str, message: str) -> None:
        self.errors.append((code, message))


def _read_party(header: etree._Element, role: str, problems: Problems) -> ParticipantId | None:
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


def _mls_to(scope: _Scope, problems: Problems) -> ParticipantId | None:
    """MLS_TO must be a 0242 SPID; anything else is only a warning and MLS then goes to C2's SPID."""
    try:
        pid = ParticipantId(scope.identifier or "", scope.instance_identifier)
    except IdentifierError as exc:
        problems.warnings.append(f"invalid-mls-to: SBDH {scope.path} is ignored: {exc}")
        return None
    if pid.scheme != PARTICIPANT_SCHEME or pid.icd != SPIS_ICD or not SPID_RE.fullmatch(pid.local_id):
        problems.warnings.append(
            f"invalid-mls-to: SBDH {scope.path} {pid.uri!r} is not a Peppol service provider ID "
            f"({PARTICIPANT_SCHEME}::{SPIS_ICD}:<6 digits>); MLS goes to the sending access point's SPID")
        return None
    return pid


def _apply_scope(scope: _Scope, found: _ScopeValues, seen: set[str], problems: Problems,
                 additional: list[tuple[str, str]]) -> None:
    kind = scope.type
    if kind in KNOWN_SCOPES and kind in seen:
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
        if COUNTRY_RE.fullmatch(scope.instance_identifier):
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
                                   problems: Problems) -> tuple[str, str, str, str, datetime]:
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


def check_payload(payload: _Payload, problems: Problems) -> None:
    if payload.namespace == SBDH_NS:
        problems.error("invalid-business-message", "the business document is itself a Standard Business Document; "
                                                   "nested envelopes are not allowed")
    elif not payload.is_xml and not (payload.mime_type or "").strip():
        problems.error("invalid-business-message", f"the {payload.local_name} payload has no mimeType attribute")


def _validate(header: etree._Element, payload: _Payload) -> Sbdh:
    problems = Problems([], [])
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

    check_payload(payload, problems)
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
