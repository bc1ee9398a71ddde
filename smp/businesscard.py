"""Peppol Directory business cards (discovery.md 5): value objects, v3 writer, v1/v2/v3 reader.

We publish version 3 (namespace .../businesscard/20180621/). The reader also takes v1 and v2 cards
(the Directory still reads them) and maps them onto the same objects: v1 has one Name and the full
field set, v2 only Name, CountryCode, GeographicalInformation, Identifier and registrationDate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from lxml import etree

from base.safexml import XmlError, parse_bytes
from smp.identifiers import IdentifierError, ParticipantId

BC_V3_NS = "http://www.peppol.eu/schema/pd/businesscard/20180621/"
BC_V2_NS = "http://www.peppol.eu/schema/pd/businesscard/20161123/"
BC_V1_NS = "http://www.peppol.eu/schema/pd/businesscard/20160112/"
VERSIONS = {BC_V3_NS: 3, BC_V2_NS: 2, BC_V1_NS: 1}
MAX_CARD_BYTES = 1024 * 1024


class BusinessCardError(ValueError):
    """A business card cannot be read or written; the message names the offending part."""


@dataclass(frozen=True)
class Name:
    text: str
    language: str | None = None  # ISO 639-1, e.g. "en"


@dataclass(frozen=True)
class EntityIdentifier:
    scheme: str
    value: str


@dataclass(frozen=True)
class Contact:
    type: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class BusinessEntity:
    names: tuple[Name, ...]
    country_code: str
    geographical_information: str | None = None
    identifiers: tuple[EntityIdentifier, ...] = ()
    website_uris: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()
    additional_information: str | None = None
    registration_date: date | None = None

    def __post_init__(self) -> None:
        if not self.names or not all(n.text.strip() for n in self.names):
            raise BusinessCardError("a business entity needs at least one non-empty name")
        if len(self.country_code) != 2 or not self.country_code.isascii() or not self.country_code.isalpha():
            raise BusinessCardError(f"country code {self.country_code!r} is not a two-letter ISO 3166 code")
        # Stored as the Directory shows it; a frozen dataclass needs object.__setattr__ for that.
        object.__setattr__(self, "country_code", self.country_code.upper())
        for name in self.names:
            if name.language is not None and not (len(name.language) == 2 and name.language.isascii()
                                                  and name.language.isalpha()):
                raise BusinessCardError(f"name language {name.language!r} is not a two-letter ISO 639-1 code")


@dataclass(frozen=True)
class BusinessCard:
    """The card of one participant; no entities means "cards supported, nothing published"."""

    participant: ParticipantId
    entities: tuple[BusinessEntity, ...] = field(default=())
    version: int = 3


def _sub(parent: etree._Element, local: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{BC_V3_NS}}}{local}", attrib)
    if text is not None:
        el.text = text
    return el


def business_card_xml(card: BusinessCard) -> bytes:
    """Serialise a card as version 3 (element order of the XSD)."""
    root = etree.Element(f"{{{BC_V3_NS}}}BusinessCard", nsmap={None: BC_V3_NS})
    _sub(root, "ParticipantIdentifier", card.participant.value, scheme=card.participant.scheme)
    for entity in card.entities:
        attrib = {"registrationDate": entity.registration_date.isoformat()} if entity.registration_date else {}
        el = _sub(root, "BusinessEntity", **attrib)
        for name in entity.names:
            _sub(el, "Name", name.text, **({"language": name.language} if name.language else {}))
        _sub(el, "CountryCode", entity.country_code)
        if entity.geographical_information:
            _sub(el, "GeographicalInformation", entity.geographical_information)
        for ident in entity.identifiers:
            _sub(el, "Identifier", ident.value, scheme=ident.scheme)
        for uri in entity.website_uris:
            _sub(el, "WebsiteURI", uri)
        for contact in entity.contacts:
            c = _sub(el, "Contact")
            for local, value in (("Type", contact.type), ("Name", contact.name),
                                 ("PhoneNumber", contact.phone), ("Email", contact.email)):
                if value:
                    _sub(c, local, value)
        if entity.additional_information:
            _sub(el, "AdditionalInformation", entity.additional_information)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")


def _children(parent: etree._Element, ns: str, local: str) -> list[etree._Element]:
    return parent.findall(f"{{{ns}}}{local}")


def _text(el: etree._Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    text = el.text.strip()
    return text or None


def _entity(el: etree._Element, ns: str, where: str) -> BusinessEntity:
    names = tuple(Name(text, n.get("language")) for n in _children(el, ns, "Name")
                  if (text := _text(n)) is not None)
    if not names:
        raise BusinessCardError(f"{where}: Name is missing or empty")
    country = _text(el.find(f"{{{ns}}}CountryCode"))
    if country is None:
        raise BusinessCardError(f"{where}: CountryCode is missing")
    identifiers = []
    for ident in _children(el, ns, "Identifier"):
        value = _text(ident)
        if value is None:
            continue
        identifiers.append(EntityIdentifier((ident.get("scheme") or "").strip(), value))
    contacts = []
    for c in _children(el, ns, "Contact"):
        contacts.append(Contact(*(_text(c.find(f"{{{ns}}}{local}"))
                                  for local in ("Type", "Name", "PhoneNumber", "Email"))))
    registration = el.get("registrationDate")
    try:
        registered = date.fromisoformat(registration.strip()) if registration else None
    except ValueError:
        raise BusinessCardError(f"{where}: registrationDate {registration!r} is not a date (YYYY-MM-DD)") from None
    try:
        return BusinessEntity(
            names=names,
            country_code=country,
            geographical_information=_text(el.find(f"{{{ns}}}GeographicalInformation")),
            identifiers=tuple(identifiers),
            website_uris=tuple(t for w in _children(el, ns, "WebsiteURI") if (t := _text(w))),
            contacts=tuple(contacts),
            additional_information=_text(el.find(f"{{{ns}}}AdditionalInformation")),
            registration_date=registered,
        )
    except BusinessCardError as exc:
        raise BusinessCardError(f"{where}: {exc}") from None


def parse_business_card(data: bytes) -> BusinessCard:
    """Read a v1, v2 or v3 card. The participant must be a syntactically valid identifier
    (the Directory rejects cards whose participant it cannot parse)."""
    try:
        root = parse_bytes(data, max_bytes=MAX_CARD_BYTES)
    except XmlError as exc:
        raise BusinessCardError(f"business card: {exc}") from None
    ns = etree.QName(root).namespace or ""
    if etree.QName(root).localname != "BusinessCard" or ns not in VERSIONS:
        raise BusinessCardError(f"not a Peppol Directory business card: root element is {root.tag}")
    pid_el = root.find(f"{{{ns}}}ParticipantIdentifier")
    pid_value = _text(pid_el)
    if pid_el is None or pid_value is None:
        raise BusinessCardError("business card: ParticipantIdentifier is missing or empty")
    try:
        participant = ParticipantId((pid_el.get("scheme") or "").strip(), pid_value)
    except IdentifierError as exc:
        raise BusinessCardError(f"business card ParticipantIdentifier: {exc}") from None
    entities = tuple(_entity(el, ns, f"BusinessEntity {i}")
                     for i, el in enumerate(_children(root, ns, "BusinessEntity"), start=1))
    return BusinessCard(participant, entities, VERSIONS[ns])


def card_from_organisation(participant: ParticipantId, *, name: str, country: str, org_number: str | None = None,
                           vat_number: str | None = None, contact_name: str | None = None,
                           contact_email: str | None = None, contact_phone: str | None = None,
                           registration_date: date | None = None, language: str | None = None) -> BusinessCard:
    """The card we publish for one of our participants, from the organisation's master data.

    Keyword names follow the gateway's Organisation record so the caller can pass its fields through.
    Identifier schemes "OrgNr" and "VAT" are the ones of the Directory's own specification example.
    """
    identifiers = tuple(EntityIdentifier(scheme, value.strip())
                        for scheme, value in (("OrgNr", org_number), ("VAT", vat_number)) if value and value.strip())
    contact = Contact(name=contact_name or None, phone=contact_phone or None, email=contact_email or None)
    entity = BusinessEntity(
        names=(Name(name.strip(), language),),
        country_code=country.strip(),
        identifiers=identifiers,
        contacts=(contact,) if contact != Contact() else (),
        registration_date=registration_date,
    )
    return BusinessCard(participant, (entity,))
