"""SMP URLs built by the client against vectors/smp/dns/url-encoding-vectors.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smp.client import redirect_target_url, service_group_url, service_metadata_url
from smp.identifiers import BIS3_INVOICE
from tests.smp.conftest import Ident

PID = Ident("iso6523-actorid-upis", "0088:5798000000001")
CREDIT_NOTE = Ident(
    "busdox-docid-qns",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##urn:cen.eu:en16931:2017#compliant"
    "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
)
PINT_JP = Ident(
    "peppol-doctype-wildcard",
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:peppol:pint:billing-1@jp-1::2.1",
)


@pytest.fixture(scope="module")
def url_vectors(vectors: Path) -> dict:
    return json.loads((vectors / "smp" / "dns" / "url-encoding-vectors.json").read_text())


def test_urls_match_vectors(url_vectors: dict) -> None:
    base = "https://smp.example.test"
    assert service_group_url(base, PID) == url_vectors["servicegroup_url"]
    assert service_group_url(base + "/", PID) == url_vectors["servicegroup_url"]
    assert service_metadata_url(base, PID, BIS3_INVOICE) == url_vectors["servicemetadata_url_invoice"]
    assert service_metadata_url(base, PID, CREDIT_NOTE) == url_vectors["servicemetadata_url_creditnote"]
    assert service_metadata_url(base, PID, PINT_JP) == url_vectors["servicemetadata_url_pint_wildcard_jp"]
    built = {service_group_url(base, PID), service_metadata_url(base, PID, BIS3_INVOICE)}
    assert url_vectors["double_encoded_WRONG_example"] not in built
    assert url_vectors["unencoded_hash_WRONG_example"] not in built


def test_base_uri_with_path_is_kept() -> None:
    assert service_group_url("https://smp.test/smp/prod", PID).startswith("https://smp.test/smp/prod/iso6523")


def testredirect_target_url_is_rebuilt_from_the_href_host(url_vectors: dict) -> None:
    href = url_vectors["servicemetadata_url_invoice"].replace("smp.example.test", "other.example.test:8443/base")
    lowercase_hex = href.replace("%3A", "%3a")
    for candidate in (href, lowercase_hex):
        assert redirect_target_url(candidate, PID, BIS3_INVOICE) == service_metadata_url(
            "https://other.example.test:8443/base", PID, BIS3_INVOICE
        )


@pytest.mark.parametrize(
    ("href", "message"),
    [
        ("ftp://x.test/iso6523-actorid-upis%3A%3A0088%3A5798000000001/services/x", "not an http"),
        ("https://x.test/iso6523-actorid-upis%3A%3A0088%3A1/services/x", "not about participant"),
        ("https://x.test/iso6523-actorid-upis%3A%3A0088%3A5798000000001/services/busdox-docid-qns%3A%3Aother",
         "not about document type"),
    ],
)
def testredirect_target_url_must_be_about_the_request(href: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        redirect_target_url(href, PID, BIS3_INVOICE)
