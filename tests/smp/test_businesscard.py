"""Business cards: the vector files read (v1, v2, v3), what we write is XSD-valid v3 and reads back the same."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from smp.businesscard import (
    BC_V3_NS,
    BusinessCard,
    BusinessCardError,
    BusinessEntity,
    Contact,
    EntityIdentifier,
    Name,
    business_card_xml,
    card_from_organisation,
    parse_business_card,
)
from smp.identifiers import ParticipantId
from tests.smp.registry_support import SMP_VECTORS, assert_valid, business_card_schema

CARDS = SMP_VECTORS / "businesscard"
PEPPOL_CARDS = sorted(p for p in CARDS.glob("*.xml") if p.name != "pc_v3_bc1.xml")


def full_card() -> BusinessCard:
    return BusinessCard(
        ParticipantId.parse("0088:5798000000001"),
        (
            BusinessEntity(
                names=(Name("Acme Danmark ApS", "da"), Name("Acme Denmark", "en")),
                country_code="DK",
                geographical_information="Vesterbrogade 1, 1620 København V",
                identifiers=(EntityIdentifier("DK:CVR", "12345678"), EntityIdentifier("VAT", "DK12345678")),
                website_uris=("https://acme.example.dk",),
                contacts=(Contact("Invoicing", "Jane Doe", "+45 11 22 33 44", "invoice@acme.example.dk"),
                          Contact(email="support@acme.example.dk")),
                additional_information="Receives BIS Billing 3.0 & credit notes <only>",
                registration_date=date(2024, 3, 1),
            ),
            BusinessEntity(names=(Name("Acme Sverige AB"),), country_code="se"),
        ),
    )


@pytest.mark.parametrize("path", PEPPOL_CARDS, ids=lambda p: p.name)
def test_vector_cards_read_and_rewrite_as_valid_v3(path: Path) -> None:
    card = parse_business_card(path.read_bytes())
    assert card.version == int(path.name[4])
    assert card.participant.scheme == "iso6523-actorid-upis"
    assert card.participant.value == card.participant.value.strip()
    rewritten = business_card_xml(card)
    assert_valid(business_card_schema(), etree.fromstring(rewritten))
    again = parse_business_card(rewritten)
    assert again.entities == card.entities
    assert again.participant.uri == card.participant.uri
    assert again.version == 3


def test_v3_spec_example_fields() -> None:
    card = parse_business_card((CARDS / "pc_v3_business-card-example-spec-v3.xml").read_bytes())
    assert card.participant.uri == "iso6523-actorid-upis::0088:example"
    (entity,) = card.entities
    assert entity.names == (Name("ACME Inc.", "en"), Name("Whatsoever Inc.", "de"))
    assert entity.country_code == "AT"
    assert entity.registration_date == date(2010, 7, 6)
    assert entity.identifiers == (EntityIdentifier("VAT", "ATU12345678"), EntityIdentifier("OrgNr", "hjdh7as9ds"))
    assert entity.website_uris == ("https://www.acme.org",)
    assert entity.contacts == (Contact(type="Technical support", email="support@acme.org"),)
    assert entity.additional_information is not None
    assert entity.additional_information.startswith("This is the free text")


def test_v1_and_v2_map_onto_the_same_objects() -> None:
    v1 = parse_business_card((CARDS / "pc_v1_business-card-example-spec-v1.xml").read_bytes())
    v2 = parse_business_card((CARDS / "pc_v2_business-card-example-spec-v2.xml").read_bytes())
    assert (v1.version, v2.version) == (1, 2)
    assert v1.entities[0].names == v2.entities[0].names == (Name("ACME Inc."),)
    assert v1.entities[0].contacts == (Contact(type="Technical support", email="support@acme.org"),)
    assert v2.entities[0].contacts == ()
    assert v1.entities[0].identifiers == v2.entities[0].identifiers


def test_participant_with_trailing_newline_is_trimmed() -> None:
    card = parse_business_card((CARDS / "pc_v3_bc-0088-5033466000005.xml").read_bytes())
    assert card.participant.value == "0088:5033466000005"
    assert len(card.entities[0].contacts) == 2


def test_several_entities() -> None:
    card = parse_business_card((CARDS / "pc_v3_business-card-test1.xml").read_bytes())
    assert len(card.entities) == 2
    assert len(card.entities[0].names) == 7


def test_non_peppol_participant_scheme_is_rejected() -> None:
    with pytest.raises(BusinessCardError, match=r"ParticipantIdentifier.*'999::9901:310-6689-799'.*scheme"):
        parse_business_card((CARDS / "pc_v3_bc1.xml").read_bytes())


def test_written_card_is_valid_v3_with_every_field() -> None:
    data = business_card_xml(full_card())
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = etree.fromstring(data)
    assert_valid(business_card_schema(), root)
    assert root.tag == f"{{{BC_V3_NS}}}BusinessCard"
    first = root.find(f"{{{BC_V3_NS}}}BusinessEntity")
    assert first is not None
    assert [etree.QName(c).localname for c in first] == [
        "Name", "Name", "CountryCode", "GeographicalInformation", "Identifier", "Identifier", "WebsiteURI",
        "Contact", "Contact", "AdditionalInformation",
    ]
    assert first.get("registrationDate") == "2024-03-01"
    assert parse_business_card(data) == full_card()


def test_card_without_entities_is_valid() -> None:
    card = BusinessCard(ParticipantId.parse("9915:nothing-published"))
    data = business_card_xml(card)
    assert_valid(business_card_schema(), etree.fromstring(data))
    assert parse_business_card(data).entities == ()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"names": ()}, "at least one non-empty name"),
    ({"names": (Name("  "),)}, "at least one non-empty name"),
    ({"country_code": "DNK"}, "two-letter ISO 3166"),
    ({"names": (Name("X", "dan"),)}, "ISO 639-1"),
])
def test_entity_rules(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"names": (Name("X"),), "country_code": "DK"} | kwargs
    with pytest.raises(BusinessCardError, match=message):
        BusinessEntity(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("data", "message"), [
    (b"<BusinessCard/>", "not a Peppol Directory business card"),
    (b"not xml", "malformed XML"),
    (b'<!DOCTYPE x [<!ENTITY e "boom">]><BusinessCard xmlns="http://www.peppol.eu/schema/pd/businesscard/20180621/"/>',
     "DOCTYPE"),
    (b'<BusinessCard xmlns="http://www.peppol.eu/schema/pd/businesscard/20180621/"/>', "ParticipantIdentifier"),
    (b'<BusinessCard xmlns="http://www.peppol.eu/schema/pd/businesscard/20180621/"><ParticipantIdentifier '
     b'scheme="iso6523-actorid-upis">9915:x</ParticipantIdentifier><BusinessEntity><Name>A</Name>'
     b'</BusinessEntity></BusinessCard>', "BusinessEntity 1: CountryCode is missing"),
    (b'<BusinessCard xmlns="http://www.peppol.eu/schema/pd/businesscard/20180621/"><ParticipantIdentifier '
     b'scheme="iso6523-actorid-upis">9915:x</ParticipantIdentifier><BusinessEntity registrationDate="1.2.2020">'
     b'<Name>A</Name><CountryCode>AT</CountryCode></BusinessEntity></BusinessCard>', "registrationDate"),
])
def test_unreadable_cards_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(BusinessCardError, match=message):
        parse_business_card(data)


def test_card_from_organisation_data() -> None:
    participant = ParticipantId.parse("0007:5567321707")
    card = card_from_organisation(participant, name=" Exempel AB ", country="se", org_number="5567321707",
                                  vat_number="SE556732170701", contact_name="Anna", contact_email="anna@exempel.se",
                                  registration_date=date(2025, 1, 2), language="sv")
    (entity,) = card.entities
    assert entity.names == (Name("Exempel AB", "sv"),)
    assert entity.country_code == "SE"
    assert entity.identifiers == (EntityIdentifier("OrgNr", "5567321707"), EntityIdentifier("VAT", "SE556732170701"))
    assert entity.contacts == (Contact(name="Anna", email="anna@exempel.se"),)
    data = business_card_xml(card)
    assert_valid(business_card_schema(), etree.fromstring(data))
    assert parse_business_card(data) == card


def test_card_from_organisation_without_optional_data() -> None:
    card = card_from_organisation(ParticipantId.parse("9915:minimal"), name="Minimal GmbH", country="AT",
                                  vat_number=" ", contact_email="")
    assert card.entities[0].identifiers == () and card.entities[0].contacts == ()
    assert_valid(business_card_schema(), etree.fromstring(business_card_xml(card)))
    with pytest.raises(BusinessCardError, match="non-empty name"):
        card_from_organisation(ParticipantId.parse("9915:minimal"), name=" ", country="AT")
