"""Deriving an SBDH from a UBL invoice or credit note: participants, document type, process, C1 country."""


from __future__ import annotations

import io
import uuid
from datetime import datetime

from lxml import etree

from accesspoint.core.sbdh.model import (
    COUNTRY_RE,
    UBL_CAC,
    UBL_CBC,
    UBL_ROOTS,
    UBL_VERSION,
    Sbdh,
    SbdhError,
)
from accesspoint.core.sbdh.reading import (
    describe,
    split_tag,
)
from base.safexml import XmlError, iterparse
from smp.identifiers import (
    DOCTYPE_SCHEME,
    PROCESS_SCHEME,
    DocumentTypeId,
    IdentifierError,
    ParticipantId,
    ProcessId,
)


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
                    root_name = split_tag(element)
                    if UBL_ROOTS.get(root_name[0]) != root_name[1]:
                        raise SbdhError("invalid-business-message",
                                        f"the document root is {describe(element)}; an SBDH can only be derived "
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


def sbdh_from_ubl(document: bytes, *, creation: datetime, country_c1: str | None = None,
                  instance_identifier: str | None = None) -> Sbdh:
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
    if not COUNTRY_RE.fullmatch(country_c1):
        raise SbdhError("invalid-country-c1", f"C1 country {country_c1!r} is not an ISO 3166-1 alpha-2 code in "
                                              "upper case (e.g. SE)")
    return Sbdh(
        sender=sender, receiver=receiver, document_type=document_type, process=process, country_c1=country_c1,
        instance_identifier=instance_identifier if instance_identifier is not None else str(uuid.uuid4()),
        # phase4 writes millisecond precision; more digits only make the header longer
        creation=creation.replace(microsecond=creation.microsecond // 1000 * 1000),
        standard=namespace, type_version=UBL_VERSION, type=local_name,
    )
