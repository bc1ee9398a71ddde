"""Edge cases of SMP parsing and the signature rules, on documents signed here with smp-a."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from certs.keystore import KeyMaterial
from smp.identifiers import BIS3_INVOICE, BIS3_PROCESS
from smp.servicemetadata import (
    DS,
    Endpoint,
    ServiceMetadataError,
    load_endpoint_certificate,
    parse_datetime,
    parse_service_group,
    parse_service_metadata,
    verify_signature,
)
from tests.smp.conftest import PARTICIPANT
from tests.smp.smpserver import EndpointSpec, service_information, sign

PROCESS = (BIS3_PROCESS.scheme, BIS3_PROCESS.value)


def document(ap: KeyMaterial) -> etree._Element:
    return service_information((PARTICIPANT.scheme, PARTICIPANT.value), (BIS3_INVOICE.scheme, BIS3_INVOICE.value),
                               [EndpointSpec(PROCESS, "https://ap.example.test/as4", ap.certificate)])


def resign_after(signed: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    root = etree.fromstring(signed)
    change(root)
    return etree.tostring(root)


def test_signed_here_verifies(smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:
    check = verify_signature(sign(document(ap_c), smp_a))
    assert check.valid and check.warnings == ()
    assert check.algorithm == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert check.certificate == smp_a.certificate


def test_signed_content_is_what_gets_parsed(smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:
    signed = sign(document(ap_c), smp_a)

    def add_unsigned_comment(root: etree._Element) -> None:
        root.insert(0, etree.Comment(" not signed but harmless "))

    check = verify_signature(resign_after(signed, add_unsigned_comment))
    assert check.valid
    assert check.signed_root.find(f".//{{{DS}}}Signature") is None
    assert parse_service_metadata(check.signed_root).endpoints[0].url == "https://ap.example.test/as4"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.append(copy.deepcopy(r.find(f"{{{DS}}}Signature"))), "2 ds:Signature elements"),
        (lambda r: r[0].append(r.find(f"{{{DS}}}Signature")), "direct child"),
        (lambda r: r.find(f".//{{{DS}}}Reference").set("URI", "#other"), "must be \"\""),
        (lambda r: r.find(f".//{{{DS}}}Transform").set("Algorithm", "http://www.w3.org/TR/1999/REC-xpath-19991116"),
         "exactly one enveloped-signature"),
        (lambda r: etree.SubElement(r.find(f".//{{{DS}}}Transforms"), f"{{{DS}}}Transform",
                                    Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"), "not allowed"),
        (lambda r: r.find(f".//{{{DS}}}SignedInfo").append(copy.deepcopy(r.find(f".//{{{DS}}}Reference"))),
         "2 Reference elements"),
        (lambda r: r.find(f".//{{{DS}}}KeyInfo").clear(), "no X509Data"),
        (lambda r: setattr(r.find(f".//{{{DS}}}X509Certificate"), "text", "bm90IGEgY2VydA=="), "X.509"),
    ],
)
def test_structure_rules(smp_a: KeyMaterial, ap_c: KeyMaterial, change, problem: str) -> None:  # type: ignore[no-untyped-def]
    check = verify_signature(resign_after(sign(document(ap_c), smp_a), change))
    assert not check.valid
    assert any(problem in p for p in check.problems), check.problems


def test_key_of_another_certificate_fails(smp_a: KeyMaterial, smp_b: KeyMaterial, ap_c: KeyMaterial) -> None:
    other = base64.b64encode(smp_b.certificate.public_bytes(Encoding.DER)).decode()

    def swap(root: etree._Element) -> None:
        root.find(f".//{{{DS}}}X509Certificate").text = other

    check = verify_signature(resign_after(sign(document(ap_c), smp_a), swap))
    assert not check.valid and "SignatureValue does not verify" in check.problems[0]


def test_chain_in_key_info_picks_the_leaf(smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:
    ca = base64.b64encode(smp_a.chain[0].public_bytes(Encoding.DER)).decode()

    def add_ca(root: etree._Element) -> None:
        data = root.find(f".//{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = ca

    check = verify_signature(resign_after(sign(document(ap_c), smp_a), add_ca))
    assert check.valid and check.certificate == smp_a.certificate


def test_malformed_and_doctype_inputs() -> None:
    assert "malformed" in verify_signature(b"<a>").problems[0]
    assert "DOCTYPE" in verify_signature(b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>").problems[0]
    assert verify_signature(b"<a/>").problems == ("the document has no ds:Signature",)


def test_dates_are_utc() -> None:
    assert parse_datetime("2009-05-01T09:00:00", "x") == datetime(2009, 5, 1, 9, tzinfo=UTC)
    assert parse_datetime(" 2013-11-08T01:00:00.000+01:00 ", "x") == datetime(2013, 11, 8, 0, tzinfo=UTC)
    assert parse_datetime("2026-01-01T00:00:00Z", "x").tzinfo is UTC
    assert parse_datetime("2024-01-01", "x") == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ServiceMetadataError, match="Endpoint/ServiceActivationDate: 'soon'"):
        parse_datetime("soon", "Endpoint/ServiceActivationDate")


def test_active_window() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    endpoint = Endpoint("p", "u", None, None, start, end)
    assert endpoint.active_at(start) and endpoint.active_at(end)
    assert not endpoint.active_at(start - timedelta(seconds=1))
    assert not endpoint.active_at(end + timedelta(seconds=1))
    assert not Endpoint("p", "u", None, None, end, start).active_at(datetime(2026, 6, 1, tzinfo=UTC))
    assert Endpoint("p", "u", None, None, None, None).active_at(datetime(1990, 1, 1, tzinfo=UTC))


def test_endpoint_certificate_forms(ap_c: KeyMaterial) -> None:
    der = ap_c.certificate.public_bytes(Encoding.DER)
    b64 = base64.b64encode(der).decode()
    wrapped = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    pem = ap_c.certificate.public_bytes(Encoding.PEM).decode()
    for text in (b64, wrapped, "\r\n" + wrapped + "\r\n", pem):
        assert load_endpoint_certificate(text) == ap_c.certificate
    for text, message in (("", "empty"), ("***", "not base64"), ("blacert", "not base64"), ("blacert=", "X.509"),
                          (base64.b64encode(b"junk").decode(), "X.509")):
        with pytest.raises(ValueError, match=message):
            load_endpoint_certificate(text)


def test_endpoint_without_usable_certificate_is_reported(smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:
    root = document(ap_c)
    root.find(".//{*}Certificate").text = "blacert"
    endpoint = parse_service_metadata(root).endpoints[0]
    assert endpoint.certificate is None and "base64" in endpoint.certificate_problem


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<x/>", "is not an SMP SignedServiceMetadata"),
        (b"<SignedServiceMetadata xmlns='http://busdox.org/serviceMetadata/publishing/1.0/'/>",
         "missing ServiceMetadata"),
        (b"<SignedServiceMetadata xmlns='http://busdox.org/serviceMetadata/publishing/1.0/'><ServiceMetadata/>"
         b"</SignedServiceMetadata>", "exactly one of ServiceInformation or Redirect"),
        (b"<ServiceMetadata xmlns='http://busdox.org/serviceMetadata/publishing/1.0/'><Redirect href=''>"
         b"<CertificateUID>CN=x</CertificateUID></Redirect></ServiceMetadata>", "missing href"),
        (b"<ServiceMetadata xmlns='http://busdox.org/serviceMetadata/publishing/1.0/'><Redirect href='https://x'>"
         b"<CertificateUID> </CertificateUID></Redirect></ServiceMetadata>", "CertificateUID: empty"),
    ],
)
def test_metadata_errors_name_the_element(xml: bytes, message: str) -> None:
    with pytest.raises(ServiceMetadataError, match=message):
        parse_service_metadata(xml)


def test_service_group_errors_and_unusable_hrefs() -> None:
    with pytest.raises(ServiceMetadataError, match="not an SMP ServiceGroup"):
        parse_service_group(b"<ServiceGroup/>")
    group = parse_service_group(
        b"<ServiceGroup xmlns='http://busdox.org/serviceMetadata/publishing/1.0/' "
        b"xmlns:ids='http://busdox.org/transport/identifiers/1.0/'>"
        b"<ids:ParticipantIdentifier scheme='iso6523-actorid-upis'>9915:a</ids:ParticipantIdentifier>"
        b"<ServiceMetadataReferenceCollection>"
        b"<ServiceMetadataReference href='https://x/iso6523-actorid-upis%3A%3A9915%3AA/services/s%3A%3Ad'/>"
        b"<ServiceMetadataReference href='https://x/iso6523-actorid-upis%3A%3A9915%3Aa/services/s%3A%3Ad'/>"
        b"<ServiceMetadataReference href='https://x/other/services/s%3A%3Ad'/>"
        b"</ServiceMetadataReferenceCollection></ServiceGroup>")
    assert [d.uri for d in group.document_types] == ["s::d"]
    assert len(group.problems) == 1 and "https://x/other/services" in group.problems[0]
