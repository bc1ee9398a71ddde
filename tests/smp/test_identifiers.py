"""Participant, document type and process identifiers; SMP URL encoding; the ICD code list."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smp.data.make_participant_schemes import render
from smp.identifiers import (
    BIS3_CREDIT_NOTE,
    BIS3_INVOICE,
    BIS3_PROCESS,
    DOCTYPE_SCHEME,
    DOCTYPE_WILDCARD_SCHEME,
    PARTICIPANT_SCHEME,
    PROCESS_SCHEME,
    DocumentTypeId,
    IdentifierError,
    ParticipantId,
    ProcessId,
    gln_valid,
    luhn_valid,
    smp_service_metadata_path,
    url_segment,
)
from smp.participant_schemes import code_list, participant_scheme

ROOT = Path(__file__).resolve().parents[2]
CODE_LIST_XML = "smp/codelists/Peppol Code Lists - Participant identifier schemes v9.7.xml"


# --- the code list -------------------------------------------------------------------------------

def test_committed_json_is_what_the_generator_makes_from_the_vector(vectors: Path) -> None:
    committed = (ROOT / "smp/data/participant-schemes.json").read_text("utf-8")
    assert render((vectors / CODE_LIST_XML).read_bytes()) == committed


def decode_url_segment(segment: str) -> str:
    """Decode a received path segment exactly once (`%3A`, `%3a` and a raw `:` all give `:`)."""
    try:
        return unquote(segment, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise IdentifierError("value", f"URL path segment {segment!r} does not percent-decode to UTF-8") from None


def smp_service_group_path(pid: ParticipantId) -> str:
    """Path of the ServiceGroup resource, relative to the SMP base URL: `/{participant}`."""
    return f"/{url_segment(pid)}"


def test_generator_runs_as_a_script(vectors: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smp.data.make_participant_schemes", str(vectors / CODE_LIST_XML)],
        cwd=ROOT, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT)},
    )
    assert json.loads(result.stdout)["version"] == "9.7"


def test_code_list_content() -> None:
    schemes = code_list().schemes
    assert len(schemes) == 105
    assert code_list().version == "9.7"
    se = participant_scheme("0007")
    assert se is not None and se.scheme_id == "SE:ORGNR" and se.state == "active" and se.registrable
    vat = participant_scheme("9955")
    assert vat is not None and vat.state == "removed" and vat.removal_date == date(2023, 7, 31)
    assert not vat.registrable
    assert participant_scheme("1234") is None


def test_deprecated_scheme_counts_as_removed_after_its_removal_date() -> None:
    ublbe = participant_scheme("0193")
    assert ublbe is not None and ublbe.state == "deprecated"
    assert not ublbe.is_removed(date(2026, 7, 6))
    assert ublbe.is_removed(date(2026, 7, 7))


# --- participants --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "iso6523-actorid-upis::0007:5567321707",
    "0007:5567321707",
    "  0007:5567321707\n",
    "iso6523-actorid-upis:: 0007:5567321707 ",
])
def test_participant_forms_and_trimming(text: str) -> None:
    pid = ParticipantId.parse(text)
    assert pid.scheme == PARTICIPANT_SCHEME
    assert pid.value == "0007:5567321707"
    assert pid.icd == "0007"
    assert pid.local_id == "5567321707"
    assert pid.uri == "iso6523-actorid-upis::0007:5567321707"


def test_participant_values_compare_case_insensitively_schemes_do_not() -> None:
    a = ParticipantId.parse("9915:Phase4-Test")
    b = ParticipantId.parse("9915:phase4-test")
    assert a == b and hash(a) == hash(b) and a.key == "9915:phase4-test"
    assert a.value == "9915:Phase4-Test"  # the original spelling is kept for display and sending
    assert len({a, b}) == 1
    upper_scheme = ParticipantId("ISO6523-ACTORID-UPIS", "9915:phase4-test")
    assert upper_scheme != b
    with pytest.raises(IdentifierError) as err:
        ParticipantId.parse("ISO6523-ACTORID-UPIS::9915:phase4-test")
    assert err.value.part == "scheme"


def test_participant_of() -> None:
    assert ParticipantId.of("0088", "5798000000001") == ParticipantId.parse("0088:5798000000001")
    assert ParticipantId.of(" 0007 ", " 5567321707 ").value == "0007:5567321707"


@pytest.mark.parametrize(("text", "part", "words"), [
    ("0007:5567321708", "check digit", "Luhn"),
    ("0007:556732170", "value", "10 digits"),
    ("0007:55673217070", "value", "10 digits"),
    ("0007:556732170A", "value", "10 digits"),
    ("0088:5798000000002", "check digit", "GS1"),
    ("0088:57980000000A1", "value", "digits only"),
    ("9955:SE556732170701", "icd", "removed on 2023-07-31"),
    ("9954:00000001234567890000", "icd", "removed on 2026-03-31"),
    ("1234:abc", "icd", "not in the Peppol participant identifier scheme code list"),
    ("007:5567321707", "icd", "4 digits"),
    ("00075567321707", "icd", "4 digits"),
    ("0007:", "value", "nothing after the ICD"),
    ("9915:a b", "value", "letters, digits"),
    ("9915:ä", "value", "letters, digits"),
    ("9915:a/b", "value", "letters, digits"),
    ("9915:" + "a" * 131, "value", "at most 135"),
    ("", "value", "empty"),
    ("iso6523_actorid_upis::9915:abc", "scheme", "three dash-separated words"),
    ("a-b-c::9915:abc", "scheme", "must be 'iso6523-actorid-upis'"),
    ("abcdefghij-abcdefghij-abcdefghij::9915:abc", "scheme", "at most 25"),
])
def test_invalid_participants_name_the_part(text: str, part: str, words: str) -> None:
    with pytest.raises(IdentifierError) as err:
        ParticipantId.parse(text)
    assert err.value.part == part
    assert words in str(err.value)
    assert part in str(err.value)


def test_130_characters_after_the_icd_are_allowed() -> None:
    assert len(ParticipantId.parse("9915:" + "a" * 130).value) == 135


def test_removed_icd_accepted_for_legacy_data_only_when_asked() -> None:
    pid = ParticipantId.parse("9955:SE556732170701", allow_removed=True)
    assert pid.icd == "9955"
    # before its removal date UBLBE was still usable; judged on a given day
    assert ParticipantId.parse("0193:abc", on=date(2026, 1, 1)).icd == "0193"
    with pytest.raises(IdentifierError, match="removed on 2026-07-07"):
        ParticipantId.parse("0193:abc", on=date(2026, 11, 21))


def test_non_strict_checks_syntax_only() -> None:
    # 0088:7315458756324 is in peppol-commons' good SBDH vectors although its GS1 check digit is wrong
    assert ParticipantId.parse("0088:7315458756324", strict=False).local_id == "7315458756324"
    assert ParticipantId.parse("1234:abc", strict=False).icd == "1234"
    assert ParticipantId.parse("a-b-c::anything goes", strict=False).value == "anything goes"
    with pytest.raises(IdentifierError):
        ParticipantId.parse("0088:a b", strict=False)


def test_values_from_the_bis_and_discovery_vectors_are_valid() -> None:
    for text in ["0088:9482348239847239874", "0088:7300010000001", "0002:FR23342", "0002:4598375937",
                 "0184:12345678", "0192:123456785", "0192:987654325", "0007:2021005489", "0088:5798000000001",
                 "0242:000123", "9915:test", "0208:0123456789", "9925:BE0123456789"]:
        assert ParticipantId.parse(text).value == text


def test_luhn_and_gln() -> None:
    assert luhn_valid("5567321707") and luhn_valid("2120000787") and luhn_valid("2021005489")
    assert not luhn_valid("5567321708") and not luhn_valid("55673217a7") and not luhn_valid("") and not luhn_valid("0")
    assert gln_valid("5798000000001") and gln_valid("7300010000001") and gln_valid("5033466000005")
    assert gln_valid("9482348239847239874")
    assert not gln_valid("7315458756324") and not gln_valid("579800000000x") and not gln_valid("")


@given(st.text(alphabet=string.digits, min_size=1, max_size=20))
def test_luhn_check_digit_is_unique(body: str) -> None:
    valid = [d for d in string.digits if luhn_valid(body + d)]
    assert len(valid) == 1


@given(st.text(alphabet=string.digits, min_size=1, max_size=20))
def test_gs1_check_digit_is_unique(body: str) -> None:
    valid = [d for d in string.digits if gln_valid(body + d)]
    assert len(valid) == 1


_LOCAL = st.text(alphabet=string.ascii_letters + string.digits + "-._~", min_size=1, max_size=130)


@given(_LOCAL)
def test_participant_uri_round_trip(local: str) -> None:
    pid = ParticipantId.parse(f"9915:{local}")
    assert ParticipantId.parse(pid.uri) == pid
    assert ParticipantId.parse(pid.uri.upper().replace("ISO6523-ACTORID-UPIS", PARTICIPANT_SCHEME)) == pid
    assert decode_url_segment(url_segment(pid)) == pid.uri


# --- document types and processes ----------------------------------------------------------------

def test_bis3_constants_are_the_exact_strings() -> None:
    assert BIS3_INVOICE.uri == (
        "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
    assert BIS3_CREDIT_NOTE.uri == (
        "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##"
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
    assert BIS3_PROCESS.uri == "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


def test_doctype_parts() -> None:
    assert BIS3_CREDIT_NOTE.root_namespace == "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
    assert BIS3_CREDIT_NOTE.local_name == "CreditNote"
    assert BIS3_CREDIT_NOTE.customization_id == (
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0")
    assert BIS3_CREDIT_NOTE.version == "2.1"
    cii = DocumentTypeId.parse(
        "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100::CrossIndustryInvoice##"
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::D16B")
    assert cii.scheme == DOCTYPE_SCHEME and cii.version == "D16B" and cii.local_name == "CrossIndustryInvoice"
    hybrid = DocumentTypeId.parse(
        "busdox-docid-qns::urn:peppol:doctype:pdf+xml##"
        "urn:cen.eu:en16931:2017#conformant#urn:peppol:france:billing:Factur-X:1.0::D22B")
    assert hybrid.root_namespace == "urn:peppol:doctype:pdf+xml" and hybrid.local_name is None
    assert hybrid.customization_id.endswith("Factur-X:1.0") and hybrid.version == "D22B"


def test_doctype_forms_and_case_sensitivity() -> None:
    assert DocumentTypeId.parse(BIS3_INVOICE.value) == BIS3_INVOICE
    assert DocumentTypeId.parse(f"  {BIS3_INVOICE.uri} ") == BIS3_INVOICE
    assert DocumentTypeId.parse(BIS3_INVOICE.uri.replace("Invoice##", "invoice##")) != BIS3_INVOICE


def test_wildcard_scheme_allows_star_busdox_does_not() -> None:
    value = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:peppol:pint:billing-1*::2.1"
    wildcard = DocumentTypeId(DOCTYPE_WILDCARD_SCHEME, value)
    assert wildcard.customization_id == "urn:peppol:pint:billing-1*"
    with pytest.raises(IdentifierError) as err:
        DocumentTypeId(DOCTYPE_SCHEME, value)
    assert err.value.part == "customization id" and "'*'" in str(err.value)


@pytest.mark.parametrize(("scheme", "value", "part"), [
    (DOCTYPE_SCHEME, "", "value"),
    (DOCTYPE_SCHEME, "x" * 501, "value"),
    (DOCTYPE_SCHEME, "urn:a::B##urn:c::2.1\u20ac", "value"),
    (DOCTYPE_SCHEME, "urn:a::B::2.1", "value"),
    (DOCTYPE_SCHEME, "##urn:c::2.1", "value"),
    (DOCTYPE_SCHEME, "urn:a::B##urn:c", "version"),
    (DOCTYPE_SCHEME, "urn:a::B##urn:c::", "version"),
    (DOCTYPE_SCHEME, "urn:a::B##::2.1", "customization id"),
    (DOCTYPE_SCHEME, "urn:a::B##urn:c d::2.1", "customization id"),
    (DOCTYPE_WILDCARD_SCHEME, "urn:a::B##urn:c\td::2.1", "customization id"),
    ("", "urn:a::B##urn:c::2.1", "scheme"),
    ("a b", "urn:a::B##urn:c::2.1", "scheme"),
    ("x" * 26, "urn:a::B##urn:c::2.1", "scheme"),
])
def test_invalid_doctypes(scheme: str, value: str, part: str) -> None:
    with pytest.raises(IdentifierError) as err:
        DocumentTypeId(scheme, value)
    assert err.value.part == part
    assert "document type identifier" in str(err.value)


def test_processes() -> None:
    assert ProcessId.parse("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0") == BIS3_PROCESS
    assert ProcessId.parse(BIS3_PROCESS.uri) == BIS3_PROCESS
    assert ProcessId.parse("ptype::urn:www.cenbii.eu:profile:bii04:ver1.0").scheme == "ptype"
    assert ProcessId.parse("urn:peppol:edec:mls").scheme == PROCESS_SCHEME
    assert ProcessId.parse("URN:FDC:PEPPOL.EU:2017:POACC:BILLING:01:1.0") != BIS3_PROCESS
    for value, part in [("", "value"), ("a b", "value"), ("x" * 201, "value"), ("\u20ac", "value")]:
        with pytest.raises(IdentifierError) as err:
            ProcessId(PROCESS_SCHEME, value)
        assert err.value.part == part


_URN_CHARS = string.ascii_letters + string.digits + ":.-_@+"


_NAMESPACE_TAIL = st.text(alphabet=_URN_CHARS, min_size=1, max_size=40).filter(
    lambda s: "::" not in s and s[0] != ":" and s[-1] != ":")


@given(_NAMESPACE_TAIL,
       st.text(alphabet=string.ascii_letters, min_size=1, max_size=20),
       st.text(alphabet=_URN_CHARS + "#", min_size=1, max_size=60).filter(lambda s: not s.endswith(":")),
       st.text(alphabet=string.ascii_letters + string.digits + ".", min_size=1, max_size=5))
def test_doctype_uri_round_trip(ns: str, local: str, customization: str, version: str) -> None:
    doctype = DocumentTypeId(DOCTYPE_SCHEME, f"urn:{ns}::{local}##{customization}::{version}")
    assert DocumentTypeId.parse(doctype.uri) == doctype
    assert doctype.local_name == local and doctype.version == version and doctype.customization_id == customization
    assert decode_url_segment(url_segment(doctype)) == doctype.uri
    assert "#" not in url_segment(doctype) and ":" not in url_segment(doctype)


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), min_size=1, max_size=200))
def test_process_uri_round_trip(value: str) -> None:
    process = ProcessId(PROCESS_SCHEME, value)
    assert ProcessId(PROCESS_SCHEME, process.uri.partition("::")[2]) == process
    assert decode_url_segment(url_segment(process)) == process.uri


# --- SMP URLs ------------------------------------------------------------------------------------

def test_smp_paths_reproduce_the_url_encoding_vectors(vectors: Path) -> None:
    data = json.loads((vectors / "smp/dns/url-encoding-vectors.json").read_text("utf-8"))
    base = "https://smp.example.test"
    pid = ParticipantId.parse("0088:5798000000001")
    pint = DocumentTypeId.parse(
        "peppol-doctype-wildcard::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
        "urn:peppol:pint:billing-1@jp-1::2.1")
    assert base + smp_service_group_path(pid) == data["servicegroup_url"]
    assert base + smp_service_metadata_path(pid, BIS3_INVOICE) == data["servicemetadata_url_invoice"]
    assert base + smp_service_metadata_path(pid, BIS3_CREDIT_NOTE) == data["servicemetadata_url_creditnote"]
    assert base + smp_service_metadata_path(pid, pint) == data["servicemetadata_url_pint_wildcard_jp"]
    assert f"{base}/businesscard/{url_segment(pid)}" == data["businesscard_url"]
    assert data["directory_indexer_put"]["body"] == pid.uri
    assert "https://directory.peppol.eu/indexer/1.0/" + url_segment(pid) == data["directory_indexer_delete"]
    assert base + smp_service_group_path(pid) != data["double_encoded_WRONG_example"]
    assert base + smp_service_metadata_path(pid, BIS3_INVOICE) != data["unencoded_hash_WRONG_example"]


@pytest.mark.parametrize("segment", [
    "iso6523-actorid-upis%3A%3A0088%3A5798000000001",
    "iso6523-actorid-upis%3a%3a0088%3a5798000000001",
    "iso6523-actorid-upis::0088:5798000000001",
])
def test_server_side_decoding_accepts_any_hex_case_and_raw_colons(segment: str) -> None:
    assert ParticipantId.parse(decode_url_segment(segment)) == ParticipantId.parse("0088:5798000000001")


def test_decoding_happens_exactly_once() -> None:
    assert decode_url_segment("iso6523-actorid-upis%253A%253A0088") == "iso6523-actorid-upis%3A%3A0088"
    with pytest.raises(IdentifierError):
        decode_url_segment("%FF")
