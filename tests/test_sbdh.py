"""SBDH (Peppol Business Message Envelope 2.0): reading, deriving from UBL, writing."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accesspoint.core.sbdh import (
    Sbdh,
    SbdhError,
    build_sbd,
    format_xs_datetime,
    parse_sbdh,
    parse_xs_datetime,
    sbdh_from_ubl,
    write_sbd,
)
from base.safexml import XmlError
from smp.identifiers import BIS3_CREDIT_NOTE, BIS3_INVOICE, BIS3_PROCESS, DocumentTypeId, ParticipantId, ProcessId

NOW = datetime.now(UTC)  # the tests' time for what they build

# Expected verdicts from vectors/as4/INDEX.md (sbdh section)
BAD = {
    "bad-no-country-c1.xml": "missing-country-c1",
    "bad-invalid-header-version.xml": "invalid-header-version",
    "bad-invalid-sender-authority.xml": "invalid-sender-authority",
    "bad-invalid-receiver-value.xml": "invalid-receiver-value",
    "bad-too-many-receivers.xml": "invalid-receiver-count",
    "bad-too-few-scopes.xml": "invalid-scope-count",
    "bad-no-business-scope.xml": "business-scope-missing",
    "bad-invalid-standard.xml": "invalid-standard",
    "bad-invalid-type-version.xml": "invalid-type-version",
    "bad-invalid-type.xml": "invalid-type",
    "bad-invalid-document-type-identifier.xml": "invalid-document-type-identifier",
    "bad-invalid-process-identifier.xml": "invalid-process-identifier",
    "bad-no-document-type-identifier.xml": "missing-document-type-identifier",
    "bad-mls-type-invalid-value.xml": "invalid-mls-type",
    "bad-no-sbdh.xml": "missing-sbdh",
    "bad-invalid-creation-date-and-time.xml": "invalid-sbd-xml",
}
# Named "bad" upstream, but since peppol-commons 12.3.9 an invalid MLS_TO is only a warning (INDEX.md)
WARNING_ONLY = {"bad-mls-to-invalid-value.xml": "invalid-mls-to"}


def _sbdh_dir(vectors: Path) -> Path:
    return vectors / "as4" / "sbdh"


def _bis_files(vectors: Path) -> list[Path]:
    files = sorted((vectors / "bis").glob("*.xml"))
    assert len(files) == 9
    return files


def _good(vectors: Path, name: str = "good-bis3-with-country_c1.xml") -> bytes:
    return (_sbdh_dir(vectors) / "good" / name).read_bytes()


# --- the vectors ----------------------------------------------------------------------------------

def test_every_good_vector_parses(vectors: Path) -> None:
    files = sorted((_sbdh_dir(vectors) / "good").glob("*.xml"))
    assert len(files) == 9
    for path in files:
        with path.open("rb") as stream:
            header = parse_sbdh(stream)
        assert header.sender.scheme == "iso6523-actorid-upis", path.name
        assert header.country_c1 in ("AT", "GB"), path.name
        assert header.creation.utcoffset() is not None, path.name


def test_bad_vectors_are_complete(vectors: Path) -> None:
    names = {p.name for p in (_sbdh_dir(vectors) / "bad").glob("*.xml")}
    assert names == set(BAD) | set(WARNING_ONLY)


@pytest.mark.parametrize(("name", "code"), sorted(BAD.items()))
def test_bad_vector_is_rejected_with_the_expected_id(vectors: Path, name: str, code: str) -> None:
    with pytest.raises(SbdhError) as err:
        parse_sbdh((_sbdh_dir(vectors) / "bad" / name).read_bytes())
    assert err.value.code == code
    assert str(err.value)


def test_invalid_mls_to_is_a_warning(vectors: Path) -> None:
    header = parse_sbdh((_sbdh_dir(vectors) / "bad" / "bad-mls-to-invalid-value.xml").read_bytes())
    assert header.mls_to is None
    assert len(header.warnings) == 1 and header.warnings[0].startswith("invalid-mls-to")
    assert "'iso6523-actorid-upis::test'" in header.warnings[0]


def test_good_bis3_full_values(vectors: Path) -> None:
    header = parse_sbdh(_good(vectors, "good-bis3-full.xml"))
    assert header.sender == ParticipantId.parse("0088:7315458756324", strict=False)
    assert header.receiver.value == "0088:4562458856624"
    assert header.document_type == BIS3_INVOICE
    assert header.process == BIS3_PROCESS
    assert header.country_c1 == "AT"
    assert header.instance_identifier == "a593a0aa-6ff7-48b0-8906-5534fa5212e0"
    assert header.creation == datetime(2019, 4, 25, 15, 46, 10, tzinfo=UTC)
    assert (header.standard, header.type_version, header.type) == (
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "2.1", "Invoice")
    assert header.mls_type == "ALWAYS_SEND"
    assert header.mls_to is None  # 9915:test is not an SPID: warning, MLS goes to C2's SPID
    assert any("invalid-mls-to" in w for w in header.warnings)
    assert header.additional == ()


def test_good_v11_custom_process_scheme_and_additional_attributes(vectors: Path) -> None:
    header = parse_sbdh(_good(vectors, "good-v11.xml"))
    assert header.process == ProcessId("ptype", "urn:www.cenbii.eu:profile:bii04:ver1.0")
    assert header.additional == (("AddAttr1", "Value1"), ("AddAttr2", ""), ("AddAttr3", ""))


def test_good_additional_scopes_defaults(vectors: Path) -> None:
    header = parse_sbdh(_good(vectors, "good-additional-scopes.xml"))
    assert header.document_type.scheme == "busdox-docid-qns"
    assert header.process.scheme == "cenbii-procid-ubl"
    assert header.additional == (("any", "other"), ("any2", "other2"))


def test_good_with_timezone(vectors: Path) -> None:
    header = parse_sbdh(_good(vectors, "good-with-timezone.xml"))
    assert header.creation.utcoffset() == timedelta(hours=1)
    assert header.creation == datetime(2013, 2, 19, 4, 10, 10, tzinfo=UTC)


def test_hybrid_binary_payload_skips_standard_checks(vectors: Path) -> None:
    header = parse_sbdh(_good(vectors, "good-hybrid-invoice.xml"))
    assert header.standard == "urn:peppol:doctype:pdf+xml" and header.type_version == "0"
    assert header.document_type.local_name is None
    assert header.creation == datetime(2025, 5, 10, 22, 39, 44, 285000, tzinfo=UTC)


# --- streaming ------------------------------------------------------------------------------------

class _HugePayload(io.RawIOBase):
    """An SBD whose business document would be `size` bytes; counts what the reader pulled."""

    def __init__(self, prefix: bytes, size: int) -> None:
        self._prefix = prefix
        self._left = size
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            chunk, self._prefix = self._prefix[:n], self._prefix[n:]
        else:
            take = min(n, self._left)
            self._left -= take
            chunk = b" " * take
        self.consumed += len(chunk)
        return chunk


def test_parse_reads_only_the_header_and_the_payload_start(vectors: Path) -> None:
    good = _good(vectors)
    start = good.index(b"<ns4:Invoice")
    stream = _HugePayload(good[: good.index(b">", start) + 1], 200 * 1024 * 1024)
    header = parse_sbdh(stream)
    assert header.type == "Invoice"
    assert stream.consumed < 256 * 1024


# --- rules beyond the vectors ---------------------------------------------------------------------

def _mutate(good: bytes, old: str, new: str) -> bytes:
    assert old.encode() in good
    return good.replace(old.encode(), new.encode(), 1)


@pytest.mark.parametrize(("old", "new", "code"), [
    ('<Identifier Authority="iso6523-actorid-upis">0088:4562458856624</Identifier>',
     '<Identifier Authority="iso6523-actorid-upis">0088:45624 58856624</Identifier>', "invalid-receiver-value"),
    ('<Identifier Authority="iso6523-actorid-upis">0088:7315458756324</Identifier>',
     '<Identifier Authority="iso6523-actorid-upis">88:7315458756324</Identifier>', "invalid-sender-value"),
    ('<Identifier Authority="iso6523-actorid-upis">0088:4562458856624</Identifier>',
     '<Identifier>0088:4562458856624</Identifier>', "invalid-receiver-authority"),
    ("<Sender>", "<Sender><Identifier Authority=\"iso6523-actorid-upis\">9915:a</Identifier></Sender><Sender>",
     "invalid-sender-count"),
    ("<InstanceIdentifier>AT</InstanceIdentifier>", "<InstanceIdentifier>at</InstanceIdentifier>",
     "invalid-country-c1"),
    ("<InstanceIdentifier>AT</InstanceIdentifier>", "<InstanceIdentifier>AUT</InstanceIdentifier>",
     "invalid-country-c1"),
    ("<InstanceIdentifier>a593a0aa-6ff7-48b0-8906-5534fa5212e0</InstanceIdentifier>",
     "<InstanceIdentifier> </InstanceIdentifier>", "invalid-instance-identifier"),
    ("<Identifier>busdox-docid-qns</Identifier>", "<Identifier>peppol-doctype-wildcard</Identifier>", None),
    ("<Identifier>cenbii-procid-ubl</Identifier>", "<Identifier>cenbii procid</Identifier>",
     "invalid-process-identifier"),
    ("billing:3.0::2.1</InstanceIdentifier>", "billing:3.0*::2.1</InstanceIdentifier>",
     "invalid-document-type-identifier"),
    ("<TypeVersion>2.1</TypeVersion>", "<TypeVersion>:2.1</TypeVersion>", "invalid-type-version"),
    ("<Standard>urn:oasis:names:specification:ubl:schema:xsd:Invoice-2</Standard>",
     "<Standard>urn:oasis:names:specification:ubl:schema:xsd:Invoice</Standard>", "invalid-standard"),
    ("<HeaderVersion>1.0</HeaderVersion>", "", "invalid-sbd-xml"),
    ('<Sender>\n      <Identifier Authority="iso6523-actorid-upis">0088:7315458756324</Identifier>\n    </Sender>', "",
     "invalid-sbd-xml"),
    ('<Identifier Authority="iso6523-actorid-upis">0088:7315458756324</Identifier>', "", "invalid-sbd-xml"),
    ("<CreationDateAndTime>2019-04-25T15:46:10Z</CreationDateAndTime>",
     "<CreationDateAndTime>25.04.2019</CreationDateAndTime>", "invalid-sbd-xml"),
    ("<Type>Invoice</Type>", "<Type><b>Invoice</b></Type>", "invalid-sbd-xml"),
    ('xmlns="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"', 'xmlns="urn:other"',
     "invalid-sbd-xml"),
    ("</BusinessScope>", "<Scope><Type>DOCUMENTID</Type><InstanceIdentifier>urn:x::y##z::1</InstanceIdentifier>"
                         "</Scope></BusinessScope>", "invalid-document-type-identifier"),
    ("</BusinessScope>", "<Scope><Type>MLS_TYPE</Type><InstanceIdentifier>FAILURE_ONLY</InstanceIdentifier>"
                         "</Scope></BusinessScope>", None),
])
def test_header_rules(vectors: Path, old: str, new: str, code: str | None) -> None:
    data = _mutate(_good(vectors), old, new)
    if code is None:
        assert parse_sbdh(data).country_c1 == "AT"
        return
    with pytest.raises(SbdhError) as err:
        parse_sbdh(data)
    assert err.value.code == code


def test_payload_rules(vectors: Path) -> None:
    good = _good(vectors)
    header_end = good.index(b"</StandardBusinessDocumentHeader>") + len(b"</StandardBusinessDocumentHeader>")
    no_payload = good[:header_end] + b"\n</StandardBusinessDocument>"
    with pytest.raises(SbdhError) as err:
        parse_sbdh(no_payload)
    assert err.value.code == "invalid-sbd-xml" and "no business document" in str(err.value)

    nested = good[:header_end] + good[good.index(b"<StandardBusinessDocument "):]
    with pytest.raises(SbdhError) as err:
        parse_sbdh(nested + b"</StandardBusinessDocument>")
    assert err.value.code in ("invalid-business-message", "invalid-standard")
    assert "nested" in str(err.value)

    binary = _mutate(_good(vectors, "good-hybrid-invoice.xml"), 'mimeType="application/pdf"', "")
    with pytest.raises(SbdhError) as err:
        parse_sbdh(binary)
    assert err.value.code == "invalid-business-message" and "mimeType" in str(err.value)


def test_malformed_and_hostile_xml(vectors: Path) -> None:
    for data in [b"", b"not xml", _good(vectors)[:400], b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>"
                 b"<StandardBusinessDocument xmlns='http://www.unece.org/cefact/namespaces/"
                 b"StandardBusinessDocumentHeader'/>"]:
        with pytest.raises(SbdhError) as err:
            parse_sbdh(data)
        assert err.value.code == "invalid-sbd-xml"


def test_duplicate_and_reserved_scopes(vectors: Path) -> None:
    duplicate = _mutate(_good(vectors), "</BusinessScope>",
                        "<Scope><Type>COUNTRY_C1</Type><InstanceIdentifier>SE</InstanceIdentifier></Scope>"
                        "</BusinessScope>")
    with pytest.raises(SbdhError) as err:
        parse_sbdh(duplicate)
    assert err.value.code == "invalid-country-c1" and "repeats" in str(err.value)
    reserved = _mutate(_good(vectors), "</BusinessScope>",
                       "<Scope><Type>COUNTRY_C4</Type><InstanceIdentifier>SE</InstanceIdentifier></Scope>"
                       "<Scope><Type>x</Type><InstanceIdentifier>1</InstanceIdentifier></Scope>"
                       "<Scope><Type>x</Type><InstanceIdentifier>2</InstanceIdentifier></Scope></BusinessScope>")
    header = parse_sbdh(reserved)
    assert header.additional == (("x", "1"),)
    assert len(header.warnings) == 2 and "COUNTRY_C4" in header.warnings[0]


def test_valid_mls_to_and_zoneless_creation(vectors: Path) -> None:
    data = _mutate(_good(vectors, "good-bis3-with-mls-to.xml"), "9915:test", "0242:000123-MLS_A.abc")
    data = _mutate(data, "2019-04-25T15:46:10Z", "2019-04-25T15:46:10.5")
    header = parse_sbdh(data)
    assert header.mls_to == ParticipantId("iso6523-actorid-upis", "0242:000123-mls_a.ABC")
    assert header.creation == datetime(2019, 4, 25, 15, 46, 10, 500000, tzinfo=UTC)
    assert header.warnings == ("SBDH DocumentIdentification/CreationDateAndTime '2019-04-25T15:46:10.5' has no "
                               "time zone; UTC assumed",)


def test_xs_datetime() -> None:
    assert parse_xs_datetime("2025-05-11T00:39:44.285+02:00") == (
        datetime(2025, 5, 11, 0, 39, 44, 285000, tzinfo=timezone(timedelta(hours=2))), True)
    assert parse_xs_datetime("2025-05-11T00:39:44.1234567-05:30")[0].microsecond == 123456
    for bad in ["", "2025-05-11", "2025-05-11 00:39:44Z", "2025-13-11T00:39:44Z", "2025-05-11T00:39:44+15:00"]:
        with pytest.raises(ValueError):
            parse_xs_datetime(bad)
    assert format_xs_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert format_xs_datetime(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(-timedelta(hours=3, minutes=30)))
                              ) == "2026-01-02T03:04:05.12-03:30"
    with pytest.raises(ValueError):
        format_xs_datetime(datetime(2026, 1, 2))


# --- from UBL, round trip and writing -------------------------------------------------------------

def test_round_trip_for_every_bis_example(vectors: Path) -> None:
    for path in _bis_files(vectors):
        document = path.read_bytes()
        derived = sbdh_from_ubl(document, creation=datetime.now(UTC))
        sbd = build_sbd(derived, document)
        assert parse_sbdh(sbd) == derived, path.name
        body = document.split(b"?>", 1)[1] if document.startswith(b"<?xml") else document
        assert body in sbd, path.name  # the payload bytes are kept exactly, only the declaration goes
        assert sbd.count(b"<?xml") == 1


def test_derived_values(vectors: Path) -> None:
    swedish = sbdh_from_ubl((vectors / "bis" / "SE-invoice-from-unit-UBL-SE-R-013.xml").read_bytes(),
                            instance_identifier="id-1", creation=datetime(2026, 11, 21, 12, tzinfo=UTC))
    assert swedish.sender == ParticipantId.of("0007", "2021005489")
    assert swedish.receiver == ParticipantId.of("0007", "2021005489")
    assert swedish.document_type == BIS3_INVOICE and swedish.process == BIS3_PROCESS
    assert swedish.country_c1 == "SE" and swedish.instance_identifier == "id-1"
    assert swedish.creation == datetime(2026, 11, 21, 12, tzinfo=UTC)
    credit = sbdh_from_ubl((vectors / "bis" / "base-creditnote-correction.xml").read_bytes(), country_c1="SE",
                           creation=NOW)
    assert credit.document_type == BIS3_CREDIT_NOTE and credit.type == "CreditNote" and credit.country_c1 == "SE"
    assert credit.sender.value == "0088:9482348239847239874" and credit.receiver.value == "0002:FR23342"
    assert credit.creation.tzinfo is not None and len(credit.instance_identifier) == 36
    assert credit.standard == "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"


@pytest.mark.parametrize(("old", "new", "code", "words"), [
    ('<cbc:EndpointID schemeID="0007">2021005489</cbc:EndpointID>\n\t\t\t<cac:PartyName>\n\t\t\t\t'
     '<cbc:Name>Kommunteknisk', "<cac:PartyName>\n\t\t\t\t<cbc:Name>Kommunteknisk",
     "invalid-receiver-value", "cbc:EndpointID of the AccountingCustomerParty is missing"),
    ('<cbc:EndpointID schemeID="0007">2021005489</cbc:EndpointID>', "<cbc:EndpointID>2021005489</cbc:EndpointID>",
     "invalid-sender-value", "no schemeID"),
    ('<cbc:EndpointID schemeID="0007">2021005489</cbc:EndpointID>',
     '<cbc:EndpointID schemeID="0007">2021005488</cbc:EndpointID>', "invalid-sender-value", "Luhn"),
    ('<cbc:EndpointID schemeID="0007">2021005489</cbc:EndpointID>',
     '<cbc:EndpointID schemeID="9955">SE202100548901</cbc:EndpointID>', "invalid-sender-value", "removed"),
    ("<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
     "</cbc:CustomizationID>", "", "missing-document-type-identifier", "cbc:CustomizationID"),
    ("<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>", "<cbc:ProfileID/>",
     "missing-process-identifier", "cbc:ProfileID"),
    ("<cbc:IdentificationCode>SE</cbc:IdentificationCode>", "", "missing-country-c1", "IdentificationCode"),
    ("<cbc:IdentificationCode>SE</cbc:IdentificationCode>", "<cbc:IdentificationCode>se</cbc:IdentificationCode>",
     "invalid-country-c1", "'se'"),
])
def test_ubl_errors_name_the_field(vectors: Path, old: str, new: str, code: str, words: str) -> None:
    document = (vectors / "bis" / "SE-invoice-from-unit-UBL-SE-R-013.xml").read_bytes()
    assert old.encode() in document
    with pytest.raises(SbdhError) as err:
        sbdh_from_ubl(document.replace(old.encode(), new.encode(), 1), creation=datetime.now(UTC))
    assert err.value.code == code
    assert words in str(err.value)


def test_ubl_other_roots_and_garbage() -> None:
    for document in [b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>", b"<Invoice/>",
                     b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'>", b""]:
        with pytest.raises(SbdhError) as err:
            sbdh_from_ubl(document, creation=datetime.now(UTC))
        assert err.value.code == "invalid-business-message"


def _se_invoice(vectors: Path) -> tuple[Sbdh, bytes]:
    document = (vectors / "bis" / "SE-invoice-from-unit-UBL-SE-R-013.xml").read_bytes()
    return sbdh_from_ubl(document, creation=datetime.now(UTC)), document


def test_written_scope_order_and_optional_scopes(vectors: Path) -> None:
    header, document = _se_invoice(vectors)
    header = replace(header, mls_to=ParticipantId.of("0242", "000123"), mls_type="FAILURE_ONLY",
                     additional=(("Z", "1"), ("A", "")))
    sbd = build_sbd(header, document)
    order = re.findall(rb"<sh:Type>([^<]+)</sh:Type>", sbd)
    assert order[0] == b"Invoice"  # DocumentIdentification/Type comes first
    assert order[1:] == [b"DOCUMENTID", b"PROCESSID", b"COUNTRY_C1", b"MLS_TO", b"MLS_TYPE", b"Z", b"A"]
    assert parse_sbdh(sbd) == header


def test_write_streams_the_same_bytes(vectors: Path) -> None:
    header, document = _se_invoice(vectors)
    out = io.BytesIO()
    write_sbd(header, io.BytesIO(document), out)
    assert out.getvalue() == build_sbd(header, document)


def test_bom_and_declarations(vectors: Path) -> None:
    header, document = _se_invoice(vectors)
    body = document.split(b"?>", 1)[1]
    standalone = b'<?xml version="1.0" encoding="utf-8" standalone="yes"?>'
    for variant in [b"\xef\xbb\xbf" + document, body.lstrip(), standalone + body, b"\xef\xbb\xbf" + body.lstrip()]:
        sbd = build_sbd(header, variant)
        assert parse_sbdh(sbd) == header
        assert body.lstrip() in sbd and b"\xef\xbb\xbf" not in sbd
    for bad, words in [(document.decode().encode("utf-16"), "UTF-16"),
                       (b'<?xml version="1.0" encoding="ISO-8859-1"?>' + body, "ISO-8859-1"),
                       (b'<?xml version="1.1"?>' + body, "XML 1.0"),
                       (body.replace(b"</Invoice>", b""), "not well-formed"),
                       (body + b"<trailing/>", "not well-formed"),
                       (b"", "no element")]:
        with pytest.raises(SbdhError) as err:
            build_sbd(header, bad)
        assert err.value.code == "invalid-business-message"
        assert words in str(err.value)


def test_write_refuses_inconsistent_headers(vectors: Path) -> None:
    header, document = _se_invoice(vectors)
    credit_note = (vectors / "bis" / "base-creditnote-correction.xml").read_bytes()
    with pytest.raises(SbdhError) as err:
        build_sbd(header, credit_note)
    assert err.value.code == "invalid-standard"
    cases = [
        (replace(header, country_c1="Sweden"), "invalid-country-c1"),
        (replace(header, instance_identifier=" "), "invalid-instance-identifier"),
        (replace(header, creation=datetime(2026, 1, 1)), "invalid-creation-date-time"),
        (replace(header, type_version="2.0"), "invalid-type-version"),
        (replace(header, standard="urn:other"), "invalid-standard"),
        (replace(header, type="CreditNote"), "invalid-type"),
        (replace(header, mls_to=ParticipantId.parse("9915:test")), "invalid-mls-to"),
        (replace(header, mls_type="always"), "invalid-mls-type"),
        (replace(header, additional=(("COUNTRY_C1", "SE"),)), "invalid-additional-attribute"),
        (replace(header, additional=(("a", "1"), ("a", "2"))), "invalid-additional-attribute"),
        (replace(header, sender=ParticipantId("other-scheme-x", "1")), "invalid-sender-authority"),
    ]
    for bad, code in cases:
        with pytest.raises(SbdhError) as err:
            build_sbd(bad, document)
        assert err.value.code == code


def test_binary_content_payload_round_trip(vectors: Path) -> None:
    hybrid = parse_sbdh(_good(vectors, "good-hybrid-invoice.xml"))
    payload = b'<BinaryContent xmlns="http://peppol.eu/xsd/ticc/envelope/1.0" mimeType="application/pdf">' \
              b"JVBERi0=</BinaryContent>"
    header = replace(hybrid, standard="urn:peppol:doctype:pdf+xml", type_version="D22B", warnings=())
    assert parse_sbdh(build_sbd(header, payload)) == header


# --- properties -----------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instance=_TEXT.filter(lambda s: s.strip() == s and s),
       country=st.from_regex(r"[A-Z0-9]{2}", fullmatch=True),
       seconds=st.integers(min_value=0, max_value=4_000_000_000),
       micro=st.integers(min_value=0, max_value=999_999),
       offset=st.integers(min_value=-14 * 60, max_value=14 * 60),
       additional=st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True),
                                  _TEXT.map(str.strip), max_size=3))
def test_build_parse_round_trip(vectors: Path, instance: str, country: str, seconds: int, micro: int, offset: int,
                                additional: dict[str, str]) -> None:
    document = (vectors / "bis" / "base-example.xml").read_bytes()
    tz = timezone(timedelta(minutes=offset))
    creation = datetime.fromtimestamp(seconds, tz).replace(microsecond=micro)
    names = {n for n in additional if n not in {"DOCUMENTID", "PROCESSID", "COUNTRY_C1", "MLS_TO", "MLS_TYPE",
                                                "COUNTRY_C4", "TECHNICAL_VALIDATION_URL",
                                                "TECHNICAL_VALIDATION_REQUIRED"}}
    header = sbdh_from_ubl(document, country_c1=country, instance_identifier=instance, creation=creation)
    header = replace(header, additional=tuple((n, additional[n]) for n in sorted(names)))
    assert parse_sbdh(build_sbd(header, document)) == header


_MUTATION = st.tuples(st.sampled_from(["flip", "delete", "insert"]), st.integers(min_value=0),
                      st.sampled_from(list(b"<>/=\"' :&;#x0aZ\x00\xff\n")))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_MUTATION, min_size=1, max_size=4))
def test_random_mutations_only_raise_sbdh_errors(vectors: Path, mutations: list[tuple[str, int, int]]) -> None:
    data = bytearray(_good(vectors, "good-bis3-full.xml"))
    header_end = data.index(b"</StandardBusinessDocumentHeader>") + 40
    for kind, position, byte in mutations:
        at = position % header_end
        if kind == "flip":
            data[at] = byte
        elif kind == "delete":
            del data[at]
        else:
            data.insert(at, byte)
    try:
        header = parse_sbdh(bytes(data))
    except (SbdhError, XmlError):
        return
    assert isinstance(header, Sbdh)
    assert isinstance(header.document_type, DocumentTypeId)


def test_payload_root_with_a_namespace_error_is_reported_not_crashing(vectors: Path) -> None:
    data = _mutate(_good(vectors, "good-bis3-full.xml"), "<ns4:Invoice ", "<:s4:Invoice ")
    with pytest.raises((SbdhError, XmlError)):
        parse_sbdh(data)


class _Trickle(io.RawIOBase):
    """Returns at most 7 bytes per read, to cross every chunk boundary of the prolog handling."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk, self._data = self._data[:7], self._data[7:]
        return chunk


def test_write_from_a_trickling_stream_and_a_large_document(vectors: Path) -> None:
    header, document = _se_invoice(vectors)
    out = io.BytesIO()
    write_sbd(header, _Trickle(b"\xef\xbb\xbf" + document), out)
    assert out.getvalue() == build_sbd(header, document)
    line_start = document.index(b"<cac:InvoiceLine>")
    line_end = document.index(b"</cac:InvoiceLine>") + len(b"</cac:InvoiceLine>")
    large = document[:line_end] + document[line_start:line_end] * 5000 + document[line_end:]
    assert len(large) > 2 * 1024 * 1024
    sbd = build_sbd(header, large)
    assert sbd.endswith(large.split(b"?>", 1)[1] + b"\n</sh:StandardBusinessDocument>\n")
    assert parse_sbdh(sbd) == header


def test_digits_must_be_ascii_and_years_four_digits() -> None:
    with pytest.raises(ValueError):
        parse_xs_datetime("٢٠٢٥-05-11T00:39:44Z")
    assert format_xs_datetime(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00Z"


def test_values_xml_cannot_carry_are_refused(vectors: Path) -> None:
    header, document = _se_invoice(vectors)
    for bad in [replace(header, additional=(("note", "a\x01b"),)), replace(header, instance_identifier="a\rb"),
                replace(header, process=ProcessId("cenbii-procid-ubl", "urn:\x07"))]:
        with pytest.raises(SbdhError) as err:
            build_sbd(bad, document)
        assert err.value.code == "invalid-sbd-xml" and "control characters" in str(err.value)
