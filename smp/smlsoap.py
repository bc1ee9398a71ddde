"""SML management SOAP 1.1 messages (discovery.md 4.2), both directions, without any I/O.

Client side: one `SoapCall` per operation (service path, exact SOAPAction, envelope bytes) and the
readers of answers and faults. Server side (the local SML): `read_request` and the answer/fault
builders. Shapes follow the WSDLs in shared/vectors/smp/schemas/ and the samples in
shared/vectors/smp/sml-soap/.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date

from lxml import etree

from base.safexml import XmlError, parse_bytes
from smp.identifiers import IdentifierError, ParticipantId

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
LRS_NS = "http://busdox.org/serviceMetadata/locator/1.0/"
IDS_NS = "http://busdox.org/transport/identifiers/1.0/"

PARTICIPANT_SERVICE = "manageparticipantidentifier"
SMP_SERVICE = "manageservicemetadata"
# The nine spaces are part of the action the SML implements (peppol-commons WSDL comment).
PARTICIPANT_ACTION = "http://busdox.org/serviceMetadata/ManageBusinessIdentifierService/1.0/         :{}"
SMP_ACTION = "http://busdox.org/serviceMetadata/ManageServiceMetadataService/1.0/:{}"
# BDMSL extension service: certificate roll-over of an SMP (discovery.md 4.2, 4.3 step 7)
BDMSL_SERVICE = "bdmslservice"
BDMSL_ACTION = "ec:services:wsdl:BDMSL:1.0:{}"
BDMSL_DATA_NS = "ec:services:wsdl:BDMSL:data:1.0"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024

# Body element -> (service, operation) of every request we send and the local SML answers.
OPERATIONS: dict[str, tuple[str, str]] = {
    "CreateParticipantIdentifier": (PARTICIPANT_SERVICE, "createIn"),
    "DeleteParticipantIdentifier": (PARTICIPANT_SERVICE, "deleteIn"),
    "PageRequest": (PARTICIPANT_SERVICE, "listIn"),
    "PrepareMigrationRecord": (PARTICIPANT_SERVICE, "prepareMigrateIn"),
    "CompleteMigrationRecord": (PARTICIPANT_SERVICE, "migrateIn"),
    "CreateServiceMetadataPublisherService": (SMP_SERVICE, "createIn"),
    "ReadServiceMetadataPublisherService": (SMP_SERVICE, "readIn"),
    "UpdateServiceMetadataPublisherService": (SMP_SERVICE, "updateIn"),
    "ServiceMetadataPublisherID": (SMP_SERVICE, "deleteIn"),
    "PrepareChangeCertificate": (BDMSL_SERVICE, "prepareChangeCertificateIn"),
}

# BDMSL migration key rule (peppol-commons CSMLDefault.MIGRATION_CODE_PATTERN; discovery.md 4.2).
MIGRATION_KEY_SPECIALS = "@#$%()[]{}*^-!~|+="
MIGRATION_KEY_MIN, MIGRATION_KEY_MAX = 8, 24
_ERR_CODE = re.compile(r"\[ERR-(\d{3})\]")
# BDMSL answers ERR-112 for a duplicate participant; older SMLs only said it in words.
_DUPLICATE_WORDS = re.compile(r"already (exists?|registered|in use)|duplicate", re.IGNORECASE)


def action(service: str, operation: str) -> str:
    template = {PARTICIPANT_SERVICE: PARTICIPANT_ACTION, BDMSL_SERVICE: BDMSL_ACTION}.get(service, SMP_ACTION)
    return template.format(operation)


@dataclass(frozen=True)
class SoapCall:
    """One request: POST `envelope` to `{base}/{service}` with header `SOAPAction: "{soap_action}"`."""

    service: str
    operation: str
    envelope: bytes

    @property
    def soap_action(self) -> str:
        return action(self.service, self.operation)


@dataclass(frozen=True)
class SmpRecord:
    smp_id: str
    logical_address: str
    physical_address: str


@dataclass(frozen=True)
class ParticipantPage:
    participants: tuple[ParticipantId, ...]
    next_page: str | None


# --- faults ---------------------------------------------------------------------------------------


class SmlError(Exception):
    """An SML operation failed. `message` is for the admin; `detail` is what the SML said."""

    retryable = False

    def __init__(self, message: str, *, detail: str = "", code: str | None = None, fault: str | None = None,
                 http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.code = code
        self.fault = fault
        self.http_status = http_status


class SmlUnauthorized(SmlError):
    """The SML did not accept our SMP certificate for this SMP ID or participant."""


class SmlNotFound(SmlError):
    """The SMP, the participant or the migration record is not known to the SML."""


class SmlBadRequest(SmlError):
    """The SML rejected the content of the request (identifier, key, address)."""


class SmlAlreadyRegistered(SmlError):
    """The participant is registered in the SML already, normally by another SMP (another provider)."""


class SmlInternalError(SmlError):
    """The SML failed on its side; trying again later may work."""

    retryable = True


class SmlUnavailable(SmlError):
    """The SML could not be reached or answered something that is not SOAP."""

    retryable = True


@dataclass(frozen=True)
class SoapFault:
    faultcode: str
    faultstring: str
    kind: str | None  # local name of the detail element: NotFoundFault, UnauthorizedFault, ...
    message: str  # FaultMessage, or the faultstring when there is none

    @property
    def code(self) -> str | None:
        """`ERR-nnn` of a BDMSL message, if any."""
        match = _ERR_CODE.search(self.message) or _ERR_CODE.search(self.faultstring)
        return f"ERR-{match.group(1)}" if match else None

    @property
    def is_duplicate(self) -> bool:
        return self.code == "ERR-112" or bool(_DUPLICATE_WORDS.search(self.message))


# --- builders -------------------------------------------------------------------------------------


def _envelope(payload: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"soap": SOAP11_NS})
    etree.SubElement(env, f"{{{SOAP11_NS}}}Header")
    etree.SubElement(env, f"{{{SOAP11_NS}}}Body").append(payload)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(env, encoding="UTF-8")


def _lrs(local: str, *, ids: bool = False) -> etree._Element:
    nsmap = {"lrs": LRS_NS, "ids": IDS_NS} if ids else {"lrs": LRS_NS}
    return etree.Element(f"{{{LRS_NS}}}{local}", nsmap=nsmap)


def _add(parent: etree._Element, ns: str, local: str, text: str, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{local}", attrib)
    el.text = text
    return el


def _add_participant(parent: etree._Element, participant: ParticipantId) -> None:
    _add(parent, IDS_NS, "ParticipantIdentifier", participant.value, scheme=participant.scheme)


def _call(payload: etree._Element) -> SoapCall:
    service, operation = OPERATIONS[etree.QName(payload).localname]
    return SoapCall(service, operation, _envelope(payload))


def _participant_call(local: str, smp_id: str, participant: ParticipantId, key: str | None = None) -> SoapCall:
    el = _lrs(local, ids=True)
    # Order matters (XSD sequence): SMP ID, participant, then the migration key.
    _add(el, LRS_NS, "ServiceMetadataPublisherID", smp_id)
    _add_participant(el, participant)
    if key is not None:
        _add(el, LRS_NS, "MigrationKey", key)
    return _call(el)


def create_participant(smp_id: str, participant: ParticipantId) -> SoapCall:
    return _participant_call("CreateParticipantIdentifier", smp_id, participant)


def delete_participant(smp_id: str, participant: ParticipantId) -> SoapCall:
    return _participant_call("DeleteParticipantIdentifier", smp_id, participant)


def prepare_to_migrate(smp_id: str, participant: ParticipantId, key: str) -> SoapCall:
    """Sent by the CURRENT SMP with its own SMP ID."""
    return _participant_call("PrepareMigrationRecord", smp_id, participant, key)


def migrate(smp_id: str, participant: ParticipantId, key: str) -> SoapCall:
    """Sent by the NEW SMP with its own SMP ID and the key received from the current provider."""
    return _participant_call("CompleteMigrationRecord", smp_id, participant, key)


def list_participants(smp_id: str, next_page: str | None = None) -> SoapCall:
    el = _lrs("PageRequest")
    _add(el, LRS_NS, "ServiceMetadataPublisherID", smp_id)
    if next_page is not None:
        _add(el, LRS_NS, "NextPageIdentifier", next_page)
    return _call(el)


def _smp_service(local: str, smp_id: str, logical_address: str, physical_address: str) -> etree._Element:
    el = _lrs(local)
    endpoint = etree.SubElement(el, f"{{{LRS_NS}}}PublisherEndpoint")
    _add(endpoint, LRS_NS, "LogicalAddress", logical_address)
    _add(endpoint, LRS_NS, "PhysicalAddress", physical_address)
    _add(el, LRS_NS, "ServiceMetadataPublisherID", smp_id)
    return el


def create_smp(smp_id: str, logical_address: str, physical_address: str) -> SoapCall:
    return _call(_smp_service("CreateServiceMetadataPublisherService", smp_id, logical_address, physical_address))


def update_smp(smp_id: str, logical_address: str, physical_address: str) -> SoapCall:
    return _call(_smp_service("UpdateServiceMetadataPublisherService", smp_id, logical_address, physical_address))


def read_smp(smp_id: str) -> SoapCall:
    # Only the ID, as peppol-commons sends it, although the XSD type declares PublisherEndpoint mandatory.
    el = _lrs("ReadServiceMetadataPublisherService")
    _add(el, LRS_NS, "ServiceMetadataPublisherID", smp_id)
    return _call(el)


def delete_smp(smp_id: str) -> SoapCall:
    el = _lrs("ServiceMetadataPublisherID")
    el.text = smp_id
    return _call(el)


def prepare_change_certificate(new_certificate_der: bytes, migration_date: date | None = None) -> SoapCall:
    """Announce our next SMP certificate (sent with the CURRENT one as TLS client certificate).
    Without a date the SML switches at the new certificate's start of validity."""
    el = etree.Element(f"{{{BDMSL_DATA_NS}}}PrepareChangeCertificate", nsmap={"ec": BDMSL_DATA_NS})
    _add(el, BDMSL_DATA_NS, "newCertificatePublicKey", base64.b64encode(new_certificate_der).decode("ascii"))
    if migration_date is not None:
        _add(el, BDMSL_DATA_NS, "migrationDate", migration_date.isoformat())
    return _call(el)


# --- reading answers (client side) -----------------------------------------------------------------


def _body(data: bytes, what: str) -> etree._Element:
    try:
        root = parse_bytes(data, max_bytes=MAX_RESPONSE_BYTES)
    except XmlError as exc:
        raise ValueError(f"{what} is not XML: {exc}") from None
    if root.tag != f"{{{SOAP11_NS}}}Envelope":
        raise ValueError(f"{what} is not a SOAP 1.1 envelope (root element {root.tag})")
    body = root.find(f"{{{SOAP11_NS}}}Body")
    if body is None:
        raise ValueError(f"{what} has no soap:Body")
    return body


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def read_fault(data: bytes) -> SoapFault | None:
    """The soap:Fault of an answer, or None when the answer is a SOAP envelope without a fault.
    Raises ValueError when the answer is not a SOAP envelope at all."""
    fault = _body(data, "SML answer").find(f"{{{SOAP11_NS}}}Fault")
    if fault is None:
        return None
    faultstring = _text(fault.find("faultstring"))
    detail = fault.find("detail")
    kind, message = None, faultstring
    if detail is not None:
        for child in detail:
            if not isinstance(child.tag, str):
                continue
            kind = etree.QName(child).localname
            # FaultMessage is in the lrs namespace; tolerate an unqualified one
            found = child.find(f"{{{LRS_NS}}}FaultMessage")
            if found is None:
                found = child.find("FaultMessage")
            message = _text(found) or faultstring
            break
    return SoapFault(_text(fault.find("faultcode")), faultstring, kind, message)


def read_payload(data: bytes) -> etree._Element | None:
    """The first element in soap:Body of a successful answer (None for the empty body of void operations)."""
    body = _body(data, "SML answer")
    return next((child for child in body if isinstance(child.tag, str)), None)


def _participant(el: etree._Element) -> ParticipantId:
    value = _text(el)
    scheme = (el.get("scheme") or "").strip()
    try:
        return ParticipantId(scheme, value)
    except IdentifierError as exc:
        raise ValueError(f"SML sent an unreadable participant identifier: {exc}") from None


def read_participant_page(payload: etree._Element | None) -> ParticipantPage:
    if payload is None or payload.tag != f"{{{LRS_NS}}}ParticipantIdentifierPage":
        raise ValueError("SML List answer has no lrs:ParticipantIdentifierPage")
    participants = tuple(_participant(el) for el in payload.findall(f"{{{IDS_NS}}}ParticipantIdentifier"))
    next_page = _text(payload.find(f"{{{LRS_NS}}}NextPageIdentifier")) or None
    return ParticipantPage(participants, next_page)


def read_smp_record(payload: etree._Element | None) -> SmpRecord:
    if payload is None or payload.tag != f"{{{LRS_NS}}}ServiceMetadataPublisherService":
        raise ValueError("SML Read answer has no lrs:ServiceMetadataPublisherService")
    endpoint = payload.find(f"{{{LRS_NS}}}PublisherEndpoint")
    return SmpRecord(
        smp_id=_text(payload.find(f"{{{LRS_NS}}}ServiceMetadataPublisherID")),
        logical_address=_text(endpoint.find(f"{{{LRS_NS}}}LogicalAddress")) if endpoint is not None else "",
        physical_address=_text(endpoint.find(f"{{{LRS_NS}}}PhysicalAddress")) if endpoint is not None else "",
    )


# --- the server side (local SML) -------------------------------------------------------------------


@dataclass(frozen=True)
class SmlRequest:
    service: str
    operation: str
    smp_id: str
    participant: ParticipantId | None = None
    migration_key: str | None = None
    next_page: str | None = None
    logical_address: str | None = None
    physical_address: str | None = None


def read_request(service: str, soap_action: str | None, data: bytes) -> SmlRequest:
    """Parse a request as the SML does; ValueError (with a message for a BadRequestFault) when wrong."""
    payload = read_payload(data)
    if payload is None:
        raise ValueError("the soap:Body is empty")
    if etree.QName(payload).namespace != LRS_NS or etree.QName(payload).localname not in OPERATIONS:
        raise ValueError(f"unknown operation element {payload.tag}")
    expected_service, operation = OPERATIONS[etree.QName(payload).localname]
    if expected_service != service:
        raise ValueError(f"{etree.QName(payload).localname} is not an operation of /{service}")
    expected_action = action(service, operation)
    if soap_action is not None and soap_action.strip('"') != expected_action:
        raise ValueError(f"SOAPAction {soap_action!r} does not match {operation} (expected {expected_action!r})")
    if operation == "deleteIn" and service == SMP_SERVICE:
        smp_id = _text(payload)
    else:
        smp_id = _text(payload.find(f"{{{LRS_NS}}}ServiceMetadataPublisherID"))
    if not smp_id:
        raise ValueError("ServiceMetadataPublisherID is missing")
    pid_el = payload.find(f"{{{IDS_NS}}}ParticipantIdentifier")
    endpoint = payload.find(f"{{{LRS_NS}}}PublisherEndpoint")
    key = payload.find(f"{{{LRS_NS}}}MigrationKey")
    next_page = payload.find(f"{{{LRS_NS}}}NextPageIdentifier")
    if service == PARTICIPANT_SERVICE and operation != "listIn" and pid_el is None:
        raise ValueError("ParticipantIdentifier is missing")
    if operation in ("prepareMigrateIn", "migrateIn") and key is None:
        raise ValueError("MigrationKey is missing")
    if operation in ("createIn", "updateIn") and service == SMP_SERVICE and endpoint is None:
        raise ValueError("PublisherEndpoint is missing")
    return SmlRequest(
        service=service,
        operation=operation,
        smp_id=smp_id,
        participant=_participant(pid_el) if pid_el is not None else None,
        migration_key=_text(key) if key is not None else None,
        next_page=(_text(next_page) or None) if next_page is not None else None,
        logical_address=_text(endpoint.find(f"{{{LRS_NS}}}LogicalAddress")) if endpoint is not None else None,
        physical_address=_text(endpoint.find(f"{{{LRS_NS}}}PhysicalAddress")) if endpoint is not None else None,
    )


def void_response() -> bytes:
    env = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"soap": SOAP11_NS})
    etree.SubElement(env, f"{{{SOAP11_NS}}}Header")
    etree.SubElement(env, f"{{{SOAP11_NS}}}Body")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(env, encoding="UTF-8")


def participant_page_response(smp_id: str, participants: list[ParticipantId], next_page: str | None) -> bytes:
    el = _lrs("ParticipantIdentifierPage", ids=True)
    for participant in participants:
        _add_participant(el, participant)
    _add(el, LRS_NS, "ServiceMetadataPublisherID", smp_id)
    if next_page is not None:
        _add(el, LRS_NS, "NextPageIdentifier", next_page)
    return _envelope(el)


def smp_record_response(record: SmpRecord) -> bytes:
    return _envelope(_smp_service("ServiceMetadataPublisherService", record.smp_id, record.logical_address,
                                  record.physical_address))


def fault_response(kind: str, message: str) -> bytes:
    """A BDMSL-style fault: `kind` is NotFoundFault, UnauthorizedFault, BadRequestFault or InternalErrorFault."""
    env = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"soap": SOAP11_NS})
    fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP11_NS}}}Body"), f"{{{SOAP11_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = "soap:Server"
    etree.SubElement(fault, "faultstring").text = message
    detail_el = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{LRS_NS}}}{kind}", nsmap={None: LRS_NS})
    _add(detail_el, LRS_NS, "FaultMessage", message)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(env, encoding="UTF-8")


def migration_key_problem(key: str) -> str | None:
    """Why `key` breaks the BDMSL migration key rule, or None when it is acceptable."""
    if not MIGRATION_KEY_MIN <= len(key) <= MIGRATION_KEY_MAX:
        return f"must be {MIGRATION_KEY_MIN} to {MIGRATION_KEY_MAX} characters long"
    if any(c.isspace() for c in key):
        return "must not contain whitespace"
    counts = {
        "special characters (of " + MIGRATION_KEY_SPECIALS + ")": sum(c in MIGRATION_KEY_SPECIALS for c in key),
        "upper-case letters": sum("A" <= c <= "Z" for c in key),
        "lower-case letters": sum("a" <= c <= "z" for c in key),
        "digits": sum("0" <= c <= "9" for c in key),
    }
    missing = [what for what, n in counts.items() if n < 2]
    return f"needs at least 2 {', 2 '.join(missing)}" if missing else None
