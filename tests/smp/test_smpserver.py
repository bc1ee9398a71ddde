"""Our SMP: what it signs verifies with signxml, libxmlsec1 (python-xmlsec) and the discovery client; exactly one
Transform; XSD-valid answers; 404/400 rules; every percent-encoding variant; caching headers; and
the whole way from the local SML's NAPTR record to our endpoint with the discovery client."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier
from signxml.exceptions import InvalidDigest, InvalidSignature
from werkzeug.serving import make_server

from base.egress import EgressPolicy
from certs.devpki import init_pki
from certs.keystore import KeyMaterial, load_certificates, load_pkcs12
from certs.validation import CertificateValidator
from smp import server as smp_server
from smp.businesscard import BusinessCard, BusinessEntity, Name, business_card_xml, parse_business_card
from smp.client import Discovery, SmpClient
from smp.errors import ParticipantNotRegistered
from smp.identifiers import (
    BIS3_CREDIT_NOTE,
    BIS3_INVOICE,
    BIS3_PROCESS,
    DocumentTypeId,
    ParticipantId,
    ProcessId,
    url_segment,
)
from smp.lookup import SmlLookup
from smp.servicemetadata import parse_service_group, parse_service_metadata, verify_signature
from smp.sml import SmlClient
from smp.smpxml import DS_NS, SMP_NS, ProcessEndpoint, service_metadata_xml, sign_service_metadata
from tests.smp.registry_support import (
    LOCAL_ZONE,
    PKI,
    ROOT,
    SMP_VECTORS,
    PkiValidator,
    assert_valid,
    business_card_schema,
    local_sml_process,
    smp_schema,
)

AS4_URL = "https://ap.example.test/as4"
PARTICIPANT = ParticipantId.parse("9915:SmpDigestTest")
VECTOR_PARTICIPANT = ParticipantId.parse("0088:5798000000001")
EMPTY = ParticipantId.parse("9915:no-services-yet")
WITH_RESPONSE = ProcessId("cenbii-procid-ubl", "urn:peppol:bis:billing_with_response")
PINT_JP = DocumentTypeId.parse(
    "peppol-doctype-wildcard::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
    "##urn:peppol:pint:billing-1@jp-1::2.1")
SLASHED = DocumentTypeId.parse("busdox-docid-qns::http://example.org/order/1.0::Order##urn:example:order/v2::1.0")
UNUSED = DocumentTypeId.parse("busdox-docid-qns::urn:example:unused::Doc##urn:example:unused::1.0")
LOWER_INVOICE = DocumentTypeId(BIS3_INVOICE.scheme, BIS3_INVOICE.value.replace("Invoice-2", "invoice-2"))
URL_VECTORS = json.loads((SMP_VECTORS / "dns" / "url-encoding-vectors.json").read_text())
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

# the SMPs here run on 127.0.0.1, as in the local environment
LOOPBACK = EgressPolicy(loopback=True, plain_http=True)


@pytest.fixture(scope="module")
def smp_key() -> KeyMaterial:
    return load_pkcs12(PKI / "smp-a.p12", "test")


@pytest.fixture(scope="module")
def ap_cert() -> x509.Certificate:
    return load_certificates(PKI / "ap-c.cert.pem")[0]


def make_source() -> smp_server.StaticParticipantSource:
    card = BusinessCard(VECTOR_PARTICIPANT, (BusinessEntity((Name("Example Receiver", "en"),), "DK"),))
    return smp_server.StaticParticipantSource(
        {
            PARTICIPANT: [(BIS3_INVOICE, [BIS3_PROCESS, WITH_RESPONSE]), (BIS3_CREDIT_NOTE, [BIS3_PROCESS]),
                          (UNUSED, [])],
            VECTOR_PARTICIPANT: [(BIS3_INVOICE, [BIS3_PROCESS]), (BIS3_CREDIT_NOTE, [BIS3_PROCESS]),
                                 (PINT_JP, [BIS3_PROCESS]), (SLASHED, [BIS3_PROCESS])],
            EMPTY: [],
        },
        {VECTOR_PARTICIPANT: card},
    )


@pytest.fixture
def source() -> smp_server.StaticParticipantSource:
    return make_source()


@pytest.fixture
def app(source: smp_server.StaticParticipantSource, smp_key: KeyMaterial, ap_cert: x509.Certificate) -> Flask:
    return smp_server.create_smp_app(source, smp_key, ap_cert, AS4_URL, technical_contact="mailto:ops@example.test",
                                     description="Example AP")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def metadata_path(participant: ParticipantId, doctype: DocumentTypeId) -> str:
    return f"/{url_segment(participant)}/services/{url_segment(doctype)}"


@pytest.fixture
def signed(client: FlaskClient) -> bytes:
    response = client.get(metadata_path(PARTICIPANT, BIS3_INVOICE))
    assert response.status_code == 200
    return response.data


# --- the signature ---------------------------------------------------------------------------------------


def strict_config() -> SignatureConfiguration:
    return SignatureConfiguration(
        require_x509=True, expect_references=1, location="./",
        signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
    )


def test_signxml_verifies_our_signature(signed: bytes, smp_key: KeyMaterial, tmp_path: Path) -> None:
    result = XMLVerifier().verify(signed, x509_cert=smp_key.certificate, expect_config=strict_config())
    assert etree.QName(result.signed_xml).localname == "SignedServiceMetadata"
    # and with the chain: the embedded leaf must chain to the test SMP CA under the test root
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes((PKI / "test-root-ca.cert.pem").read_bytes() + (PKI / "test-smp-ca.cert.pem").read_bytes())
    XMLVerifier().verify(signed, ca_pem_file=str(bundle), expect_config=strict_config())


def test_signxml_rejects_altered_answer(signed: bytes, smp_key: KeyMaterial) -> None:
    altered = signed.replace(AS4_URL.encode(), b"https://evil.example.test/as4")
    with pytest.raises((InvalidDigest, InvalidSignature)):
        XMLVerifier().verify(altered, x509_cert=smp_key.certificate, expect_config=strict_config())


def libxmlsec_verify(data: bytes, *, cert: Path | None = None, trusted: tuple[Path, ...] = ()) -> None:
    """Verify with libxmlsec1 (python-xmlsec), an implementation independent of signxml: either with
    the public key of `cert`, or with the embedded certificate, which must chain to `trusted`."""
    signature = xmlsec.tree.find_node(etree.fromstring(data), xmlsec.constants.NodeSignature)
    if cert is not None:
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_file(str(cert), xmlsec.constants.KeyDataFormatCertPem)
    else:
        manager = xmlsec.KeysManager()
        for ca in trusted:
            manager.load_cert(str(ca), xmlsec.constants.KeyDataFormatPem, xmlsec.constants.KeyDataTypeTrusted)
        context = xmlsec.SignatureContext(manager)
    context.verify(signature)


def test_libxmlsec_verifies_our_signature(signed: bytes) -> None:
    libxmlsec_verify(signed, cert=PKI / "smp-a.cert.pem")
    libxmlsec_verify(signed, trusted=(PKI / "test-root-ca.cert.pem", PKI / "test-smp-ca.cert.pem"))
    with pytest.raises(xmlsec.Error):
        libxmlsec_verify(signed, trusted=(PKI / "rogue-ca.cert.pem",))
    with pytest.raises(xmlsec.VerificationError):
        libxmlsec_verify(signed, cert=PKI / "smp-b.cert.pem")
    with pytest.raises(xmlsec.VerificationError):
        libxmlsec_verify(signed.replace(b"billing:01:1.0", b"billing:02:1.0"), cert=PKI / "smp-a.cert.pem")


def test_discovery_client_verifies_our_signature(signed: bytes, smp_key: KeyMaterial) -> None:
    check = verify_signature(signed)
    assert check.valid, check.problems
    assert check.warnings == ()  # in particular no "second Transform" warning
    assert check.certificate == smp_key.certificate
    metadata = parse_service_metadata(signed)
    assert metadata.participant.value == PARTICIPANT.value
    assert metadata.document_type.value == BIS3_INVOICE.value
    assert [p.process.value for p in metadata.processes] == [BIS3_PROCESS.value, WITH_RESPONSE.value]
    for process in metadata.processes:
        (endpoint,) = process.endpoints
        assert (endpoint.transport_profile, endpoint.url) == ("peppol-transport-as4-v2_0", AS4_URL)
        assert endpoint.certificate == load_certificates(PKI / "ap-c.cert.pem")[0]
        assert endpoint.technical_contact == "mailto:ops@example.test"
        assert endpoint.description == "Example AP"
        assert endpoint.activation is None and endpoint.expiration is None


def test_signature_shape(signed: bytes, smp_key: KeyMaterial) -> None:
    root = etree.fromstring(signed)
    assert signed.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    signature = root[-1]
    assert signature.tag == f"{{{DS_NS}}}Signature"
    assert len(root.findall(f".//{{{DS_NS}}}Signature")) == 1
    ds = {"ds": DS_NS}
    assert signature.xpath("ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm", namespaces=ds) == [
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"]
    assert signature.xpath("ds:SignedInfo/ds:SignatureMethod/@Algorithm", namespaces=ds) == [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    (reference,) = signature.xpath("ds:SignedInfo/ds:Reference", namespaces=ds)
    assert reference.get("URI") == ""
    assert reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=ds) == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature"]
    assert reference.xpath("ds:DigestMethod/@Algorithm", namespaces=ds) == ["http://www.w3.org/2001/04/xmlenc#sha256"]
    assert signature.xpath("ds:KeyInfo/ds:X509Data/ds:X509SubjectName/text()", namespaces=ds) == [
        "CN=PXX000001,OU=PEPPOL TEST SMP,O=Example SMP A,C=XX"]
    (cert_text,) = signature.xpath("ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()", namespaces=ds)
    assert x509.load_der_x509_certificate(base64.b64decode(cert_text)) == smp_key.certificate
    assert b"&#13;" not in signed and b"\r" not in signed


def test_answers_are_xsd_valid(client: FlaskClient, signed: bytes) -> None:
    assert_valid(smp_schema(), etree.fromstring(signed))
    group = client.get(f"/{url_segment(PARTICIPANT)}")
    assert_valid(smp_schema(), etree.fromstring(group.data))
    empty = client.get(f"/{url_segment(EMPTY)}")
    assert_valid(smp_schema(), etree.fromstring(empty.data))


# --- the pure builders ------------------------------------------------------------------------------------


def test_endpoint_dates_are_written_in_utc(smp_key: KeyMaterial, ap_cert: x509.Certificate) -> None:
    cet = datetime(2027, 1, 1, 1, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Brussels"))
    element = service_metadata_xml(PARTICIPANT, BIS3_INVOICE, [
        (BIS3_PROCESS, AS4_URL, ap_cert.public_bytes(Encoding.DER), cet, cet + timedelta(days=365), "d", "c")])
    signed = sign_service_metadata(element, smp_key)
    assert b"<ServiceActivationDate>2027-01-01T01:00:00Z</ServiceActivationDate>" in signed
    assert b"<ServiceExpirationDate>2028-01-01T01:00:00Z</ServiceExpirationDate>" in signed
    assert_valid(smp_schema(), etree.fromstring(signed))
    assert verify_signature(signed).valid
    assert element.find(f"{{{DS_NS}}}Signature") is None  # the input element is left unsigned
    assert sign_service_metadata(element, smp_key) == signed  # RSA PKCS#1 v1.5: same input, same bytes


@pytest.mark.parametrize(("entries", "message"), [
    ([], "has no process"),
    ([(BIS3_PROCESS, AS4_URL), (BIS3_PROCESS, AS4_URL)], "listed twice"),
    ([(BIS3_PROCESS, "ftp://ap.example.test")], "not an http"),
    ([(BIS3_PROCESS, AS4_URL, datetime(2027, 1, 1))], "no timezone"),
    ([(BIS3_PROCESS, AS4_URL, datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))], "not before"),
])
def test_metadata_builder_refuses_what_clients_would_trip_over(entries: list[tuple], message: str,
                                                               ap_cert: x509.Certificate) -> None:
    der = ap_cert.public_bytes(Encoding.DER)
    processes = [ProcessEndpoint(e[0], e[1], der, *e[2:]) for e in entries]
    with pytest.raises(ValueError, match=message):
        service_metadata_xml(PARTICIPANT, BIS3_INVOICE, processes)


def test_metadata_builder_refuses_non_certificate() -> None:
    with pytest.raises(ValueError, match=r"not a DER X\.509 certificate"):
        service_metadata_xml(PARTICIPANT, BIS3_INVOICE, [ProcessEndpoint(BIS3_PROCESS, AS4_URL, b"blacert")])


def test_only_signed_service_metadata_is_signed(smp_key: KeyMaterial) -> None:
    with pytest.raises(ValueError, match="SignedServiceMetadata"):
        sign_service_metadata(etree.Element(f"{{{SMP_NS}}}ServiceGroup"), smp_key)


# --- status codes and identifiers in URLs -----------------------------------------------------------------


def vector_path(name: str) -> str:
    return urlsplit(URL_VECTORS[name]).path


@pytest.mark.parametrize("name", ["servicegroup_url", "servicemetadata_url_invoice", "servicemetadata_url_creditnote",
                                  "servicemetadata_url_pint_wildcard_jp", "businesscard_url"])
def test_vector_urls_are_served(client: FlaskClient, name: str) -> None:
    response = client.get(vector_path(name))
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"] == "text/xml; charset=UTF-8"


@pytest.mark.parametrize("transform", [str.lower, lambda p: p.replace("%3A", ":"), lambda p: p.replace("%3A", "%3a")],
                         ids=["lowercase-hex", "raw-colon", "mixed"])
def test_encoding_variants_give_the_same_answer(client: FlaskClient, transform) -> None:  # type: ignore[no-untyped-def]
    path = vector_path("servicemetadata_url_invoice")
    participant, _, doctype = path.partition("/services/")
    variant = transform(participant) + "/services/" + doctype.replace("%3A", "%3a")
    assert client.get(variant).data == client.get(path).data


def test_participant_value_is_case_insensitive(client: FlaskClient) -> None:
    upper = ParticipantId("iso6523-actorid-upis", "9915:SMPDIGESTTEST")
    response = client.get(metadata_path(upper, BIS3_INVOICE))
    assert response.status_code == 200
    assert verify_signature(response.data).valid
    assert client.get(f"/{url_segment(upper)}").status_code == 200


def test_document_type_containing_slash(client: FlaskClient) -> None:
    path = metadata_path(VECTOR_PARTICIPANT, SLASHED)
    assert "%2F" in path
    response = client.get(path)
    assert response.status_code == 200
    assert parse_service_metadata(response.data).document_type.value == SLASHED.value


@pytest.mark.parametrize(("path", "status"), [
    (f"/{url_segment(ParticipantId.parse('9915:unknown'))}", 404),
    (metadata_path(ParticipantId.parse("9915:unknown"), BIS3_INVOICE), 404),
    (metadata_path(PARTICIPANT, PINT_JP), 404),
    (metadata_path(PARTICIPANT, UNUSED), 404),  # registered without any process: not served
    (metadata_path(PARTICIPANT, LOWER_INVOICE), 404),  # document types are case-sensitive
    # schemes in another case are found (tests/hostile/test_identifier_case.py), unknown participants are not
    (metadata_path(ParticipantId("ISO6523-ACTORID-UPIS", "9915:unknown"), BIS3_INVOICE), 404),
    (f"/{url_segment(PARTICIPANT)}/something", 404),
    (f"/{url_segment(PARTICIPANT)}/services/", 404),
    (f"/businesscard/{url_segment(PARTICIPANT)}", 404),
    ("/9915:SmpDigestTest", 400),  # no scheme
    ("/iso6523-actorid-upis::9915:has%20space", 400),
    (vector_path("double_encoded_WRONG_example"), 400),
    (f"/{url_segment(PARTICIPANT)}/services/busdox-docid-qns%3A%3Anot-a-doctype", 400),
    ("/businesscard/nonsense", 400),
])
def test_status_codes(client: FlaskClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status, (path, response.data)
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.data.strip()


def test_unencoded_hash_is_a_truncated_document_type(client: FlaskClient) -> None:
    # The '#' starts the fragment: the server sees only what precedes it and cannot parse a doc type.
    response = client.get(URL_VECTORS["unencoded_hash_WRONG_example"].replace("https://smp.example.test", ""))
    assert response.status_code == 400
    assert b"##" in response.data


# --- caching ------------------------------------------------------------------------------------------


def test_caching_headers_and_revalidation(client: FlaskClient) -> None:
    path = metadata_path(PARTICIPANT, BIS3_INVOICE)
    first = client.get(path)
    assert first.headers["Cache-Control"] == "public, max-age=60"
    etag = first.headers["ETag"]
    assert etag.startswith('"') and len(etag) > 20
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head(path)
    assert head.status_code == 200 and head.headers["ETag"] == etag
    group = client.get(f"/{url_segment(PARTICIPANT)}")
    assert group.headers["Cache-Control"] == "public, max-age=60" and group.headers["ETag"]


def test_signed_bytes_are_reused_until_the_data_changes(source: smp_server.StaticParticipantSource,
                                                        smp_key: KeyMaterial, ap_cert: x509.Certificate,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counting(element: etree._Element, key: KeyMaterial) -> bytes:
        calls.append(1)
        return sign_service_metadata(element, key)

    monkeypatch.setattr(smp_server, "sign_service_metadata", counting)
    client = smp_server.create_smp_app(source, smp_key, ap_cert, AS4_URL, max_age=5).test_client()
    path = metadata_path(PARTICIPANT, BIS3_INVOICE)
    first = client.get(path)
    assert first.headers["Cache-Control"] == "public, max-age=5"
    assert client.get(path).data == first.data
    assert len(calls) == 1
    source.registrations[PARTICIPANT] = [(BIS3_INVOICE, [BIS3_PROCESS])]
    changed = client.get(path)
    assert len(calls) == 2
    assert changed.data != first.data and changed.headers["ETag"] != first.headers["ETag"]
    assert [p.process.value for p in parse_service_metadata(changed.data).processes] == [BIS3_PROCESS.value]
    assert verify_signature(changed.data).valid


# --- ServiceGroup and business card -------------------------------------------------------------------------


def test_service_group_lists_served_document_types(client: FlaskClient) -> None:
    response = client.get(f"/{url_segment(PARTICIPANT)}")
    group = parse_service_group(response.data)
    assert group.problems == ()
    assert [d.value for d in group.document_types] == [BIS3_INVOICE.value, BIS3_CREDIT_NOTE.value]
    hrefs = etree.fromstring(response.data).xpath("//smp:ServiceMetadataReference/@href", namespaces={"smp": SMP_NS})
    assert len(hrefs) == 2
    for href in hrefs:
        parts = urlsplit(href)
        assert parts.netloc == "localhost"
        assert client.get(parts.path).status_code == 200


def test_known_participant_without_services_gets_an_empty_group(client: FlaskClient) -> None:
    response = client.get(f"/{url_segment(EMPTY)}")
    assert response.status_code == 200
    assert parse_service_group(response.data).document_types == ()


def test_mounted_under_a_prefix_and_with_public_url(source: smp_server.StaticParticipantSource, smp_key: KeyMaterial,
                                                    ap_cert: x509.Certificate) -> None:
    app = Flask("gateway")
    app.register_blueprint(smp_server.smp_blueprint(source, smp_key, ap_cert, AS4_URL), url_prefix="/smp")
    client = app.test_client()
    response = client.get(f"/smp/{url_segment(PARTICIPANT)}")
    hrefs = etree.fromstring(response.data).xpath("//smp:ServiceMetadataReference/@href", namespaces={"smp": SMP_NS})
    assert hrefs[0] == "http://localhost/smp" + metadata_path(PARTICIPANT, BIS3_INVOICE)
    assert client.get(urlsplit(hrefs[0]).path).status_code == 200
    assert client.get(f"/smp/businesscard/{url_segment(VECTOR_PARTICIPANT)}").status_code == 200

    public = smp_server.create_smp_app(source, smp_key, ap_cert, AS4_URL, public_url="https://smp.example.test/")
    hrefs = etree.fromstring(public.test_client().get(f"/{url_segment(PARTICIPANT)}").data).xpath(
        "//smp:ServiceMetadataReference/@href", namespaces={"smp": SMP_NS})
    assert hrefs[1] == "https://smp.example.test" + metadata_path(PARTICIPANT, BIS3_CREDIT_NOTE)


def test_business_card_is_served(client: FlaskClient, source: smp_server.StaticParticipantSource) -> None:
    response = client.get(f"/businesscard/{url_segment(VECTOR_PARTICIPANT)}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert_valid(business_card_schema(), etree.fromstring(response.data))
    assert response.data == business_card_xml(source.cards[VECTOR_PARTICIPANT])
    assert parse_business_card(response.data).entities[0].names == (Name("Example Receiver", "en"),)


# --- end to end: SML record -> our SMP -> verified endpoint ---------------------------------------------------


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_discovery_finds_our_endpoint_through_the_local_sml(app: Flask, tmp_path: Path) -> None:
    validator = PkiValidator()
    with serving(app) as smp_url, local_sml_process(tmp_path) as sml:
        registry = SmlClient(sml.url, "LOCAL-SMP-A", timeout=5)
        registry.create_smp(smp_url, "127.0.0.1")
        registry.create_participant(PARTICIPANT)
        discovery = Discovery(SmlLookup(LOCAL_ZONE, [f"127.0.0.1:{sml.dns_port}"], timeout=3),
                              SmpClient(validator, egress=LOOPBACK, timeout=5.0, clock=lambda: NOW), validator)
        found = discovery.find_endpoint(ParticipantId.parse("9915:smpdigesttest"), BIS3_INVOICE, BIS3_PROCESS,
                                        with_service_group=True)
        assert found.smp_uri == smp_url
        assert found.endpoint_url == AS4_URL
        assert found.certificate == load_certificates(PKI / "ap-c.cert.pem")[0]
        assert found.metadata.signature.valid
        credit = discovery.find_endpoint(PARTICIPANT, BIS3_CREDIT_NOTE, BIS3_PROCESS)
        assert credit.endpoint_url == AS4_URL


@pytest.mark.integration
def test_runs_on_its_own(tmp_path: Path) -> None:
    config = tmp_path / "smp.json"
    shutil.copy(PKI / "smp-a.p12", tmp_path / "smp.p12")
    shutil.copy(PKI / "ap-c.cert.pem", tmp_path / "ap.pem")
    config.write_text(json.dumps({
        "smp_keystore": "smp.p12", "ap_certificate": "ap.pem", "as4_url": AS4_URL,
        "participants": {PARTICIPANT.uri: {BIS3_INVOICE.uri: [BIS3_PROCESS.uri]}},
    }))
    proc = subprocess.Popen([sys.executable, "-m", "smp.server", "--config", str(config), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "SMP_KEYSTORE_PASSWORD": "test"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("smp listening on "), line
        base = line.removeprefix("smp listening on ")
        response = requests.get(base + metadata_path(PARTICIPANT, BIS3_INVOICE), timeout=10)
        assert response.status_code == 200
        assert verify_signature(response.content).valid
        assert requests.get(base + metadata_path(PARTICIPANT, BIS3_CREDIT_NOTE), timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.integration
def test_dev_pki_smp_passes_the_real_certificate_validator(tmp_path: Path) -> None:
    """The local environment: dev PKI keys, our SMP, the local SML, and the gateway's own validator."""
    pki = init_pki(tmp_path / "pki")
    smp_key = load_pkcs12(pki.smp_p12, pki.password)
    ap_certificate = load_certificates(pki.ap_cert)[0]
    validator = CertificateValidator(pki.anchors())
    app = smp_server.create_smp_app(make_source(), smp_key, ap_certificate, "http://127.0.0.1:9/as4")
    with serving(app) as smp_url, local_sml_process(tmp_path) as sml:
        registry = SmlClient(sml.url, "LOCAL-GATEWAY-1", timeout=5)
        registry.create_smp(smp_url, "127.0.0.1")
        registry.create_participant(PARTICIPANT)
        discovery = Discovery(SmlLookup(LOCAL_ZONE, [f"127.0.0.1:{sml.dns_port}"], timeout=3),
                              SmpClient(validator, egress=LOOPBACK, timeout=5.0), validator)
        found = discovery.find_endpoint(PARTICIPANT, BIS3_INVOICE, BIS3_PROCESS)
        assert found.endpoint_url == "http://127.0.0.1:9/as4"
        assert found.certificate == ap_certificate
        assert found.certificate_verdict.valid
        assert found.metadata.certificate_verdict.valid
        assert found.metadata.signature.certificate == smp_key.certificate
        # a participant nobody registered is definitively unknown
        with pytest.raises(ParticipantNotRegistered):
            discovery.find_endpoint(ParticipantId.parse("9915:nobody"), BIS3_INVOICE, BIS3_PROCESS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.text(max_size=60), second=st.text(max_size=120), services=st.booleans())
def test_any_path_gets_200_400_or_404(client: FlaskClient, first: str, second: str, services: bool) -> None:
    path = "/" + quote(first, safe="") + ("/services/" + quote(second, safe="") if services else "")
    response = client.get(path)
    assert response.status_code in (200, 400, 404), (path, response.data)
