"""SML names and NAPTR handling against vectors/smp/dns/."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from accesspoint import config
from smp.lookup import SML_ZONES, NaptrRecord, naptr_name, parse_naptr_regexp, select_smp_uri
from tests.smp.conftest import Ident


def _dns_vectors(vectors: Path) -> dict:
    return json.loads((vectors / "smp" / "dns" / "sml-dns-name-vectors.json").read_text())


def test_every_naptr_name_vector(vectors: Path) -> None:
    data = _dns_vectors(vectors)
    assert len(data["vectors"]) == 8
    for vector in data["vectors"]:
        participant = Ident(vector["scheme"], vector["value"])
        assert naptr_name(participant, data["zones"]["peppol-prod"]) == vector["naptr_name_peppol_prod"]
        assert naptr_name(participant, data["zones"]["peppol-test"]) == vector["naptr_name_peppol_test"]
        assert naptr_name(participant, "zone.test").split(".")[0] == vector["naptr_label"]


def test_bdxl_document_example_matches_lowercased(vectors: Path) -> None:
    example = _dns_vectors(vectors)["edelivery_bdxl_1_6_examples"][0]
    name = naptr_name(Ident("iso6523-actorid-upis", example["canonical_input"]), "z")
    assert name.split(".")[0] == example["sha256_base32_nopad"].lower()


def test_scheme_is_a_label_not_hashed_and_value_case_does_not_matter() -> None:
    upper = naptr_name(Ident("ISO6523-ACTORID-UPIS", "0088:123ABC"), "Local.Peppol.Test.")
    lower = naptr_name(Ident("iso6523-actorid-upis", "0088:123abc"), "local.peppol.test")
    assert upper == lower
    expected = base64.b32encode(hashlib.sha256(b"0088:123abc").digest()).decode().rstrip("=").lower()
    assert lower == f"{expected}.iso6523-actorid-upis.local.peppol.test"
    assert len(expected) == 52


def test_zones_match_configuration() -> None:
    assert config.SML_ZONES == SML_ZONES
    assert SML_ZONES["production"] == "participant.sml.prod.tech.peppol.org"
    assert SML_ZONES["test"] == "participant.sml.test.tech.peppol.org"


def test_vector_naptr_example(vectors: Path) -> None:
    example = _dns_vectors(vectors)["naptr_example"]
    record = NaptrRecord(100, 10, "U", "Meta:SMP", "!^.*$!https://smp.example.test!", ".")
    name = naptr_name(Ident("iso6523-actorid-upis", "9915:test"), "participant.sml.test.tech.peppol.org")
    assert select_smp_uri([record], name) == example["expected_smp_base_uri"]


@pytest.mark.parametrize(
    ("regexp", "expected"),
    [
        ("!^.*$!https://smp.example.test!", "https://smp.example.test"),
        ("!.*!https://www.anotherexample.com/smp/prod!", "https://www.anotherexample.com/smp/prod"),
        ("!^(.*)\\.iso6523.*$!https://\\1.smp.test!", "https://abc.smp.test"),
        ("!^ABC.*$!https://smp.test!i", "https://smp.test"),
        ("#^.*$#https://smp.test/a!b#", "https://smp.test/a!b"),
        ("!^.*$!https://smp.test/x\\!y!", "https://smp.test/x!y"),
    ],
)
def test_parse_naptr_regexp(regexp: str, expected: str) -> None:
    assert parse_naptr_regexp(regexp, "abc.iso6523-actorid-upis.zone") == expected


@pytest.mark.parametrize(
    ("regexp", "message"),
    [
        ("!^x$!https://a!", "does not match"),
        ("!^.*$!https://a", "expected"),
        ("!^.*$!https://a!g", "unknown flags"),
        ("a^.*$ahttps://aa", "cannot be a delimiter"),
        ("!(!x!", "invalid pattern"),
        ("!^.*$!\\1!", "missing group"),
        ("!!", "too short"),
    ],
)
def test_parse_naptr_regexp_rejects(regexp: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_naptr_regexp(regexp, "abc.zone")


def test_select_orders_and_filters() -> None:
    records = [
        NaptrRecord(200, 1, "U", "Meta:SMP", "!^.*$!https://late.test!"),
        NaptrRecord(100, 20, "u", "meta:smp", "!^.*$!https://second.test!"),
        NaptrRecord(100, 10, "U", "Meta:SMP", "!^.*$!https://first.test/!"),
        NaptrRecord(1, 1, "S", "Meta:SMP", "!^.*$!https://not-terminal.test!"),
        NaptrRecord(1, 1, "U", "Meta:Other", "!^.*$!https://other.test!"),
    ]
    assert select_smp_uri(records, "x.zone") == "https://first.test"
    assert select_smp_uri(records[:2], "x.zone") == "https://second.test"


def test_select_skips_broken_records_and_reports_when_none_usable() -> None:
    broken = NaptrRecord(1, 1, "U", "Meta:SMP", "!^nomatch$!https://a.test!")
    ftp = NaptrRecord(2, 1, "U", "Meta:SMP", "!^.*$!ftp://a.test!")
    good = NaptrRecord(3, 1, "U", "Meta:SMP", "!^.*$!http://127.0.0.1:8080/smp!")
    assert select_smp_uri([broken, ftp, good], "x.zone") == "http://127.0.0.1:8080/smp"
    with pytest.raises(ValueError, match="not an http"):
        select_smp_uri([broken, ftp], "x.zone")
    with pytest.raises(LookupError, match="Meta:SMP"):
        select_smp_uri([NaptrRecord(1, 1, "U", "Meta:Other", "!^.*$!https://a!")], "x.zone")
    with pytest.raises(LookupError):
        select_smp_uri([], "x.zone")
