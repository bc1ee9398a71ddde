"""Every file of vectors/smp/{smp-signed,smp-servicegroup,generated} gives the verdict of its INDEX.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from certs.anchors import TrustAnchors
from certs.keystore import load_certificates
from certs.validation import CertificateValidator, Purpose
from smp.identifiers import BIS3_PROCESS
from smp.servicemetadata import (
    AS4_V2,
    ServiceMetadataError,
    XmlId,
    echo_problems,
    parse_service_group,
    parse_service_metadata,
    select_endpoint,
    subject_matches,
    verify_signature,
)
from tests.smp.conftest import PARTICIPANT, VECTOR_NOW, Ident

BASWARE_AS4 = "https://test-api.basware.com/peppol/as4"
# file -> (valid in legacy mode (SHA-1 allowed), AS4 v2 endpoint usable at 2026-11-21 for the file's first process)
SIGNED = {
    "pc_signed-service-metadata1.xml": (False, None),
    "pc_signed-service-metadata2.xml": (True, None),
    "pc_signed-service-metadata3-c14n-inclusive.xml": (True, None),
    "vefa_busdox-servicemetadata-0192-12345678-1.xml": (True, BASWARE_AS4),
    "vefa_busdox-servicemetadata-0192-12345678-2.xml": (True, BASWARE_AS4),
    "vefa_busdox-servicemetadata-0192-12345678-3.xml": (True, BASWARE_AS4),
    "vefa_busdox-servicemetadata-0192-923829644-1.xml": (True, None),
    "vefa_busdox-servicemetadata-0192-923829644-2.xml": (True, BASWARE_AS4),
    "vefa_busdox-servicemetadata-0192-923829644-3.xml": (True, None),
    "vefa_busdox-servicemetadata-0192-98765432-1.xml": (True, None),
    "vefa_busdox-servicemetadata-0192-98765432-2.xml": (True, None),
    "vefa_busdox-servicemetadata-0192-98765432-3.xml": (True, None),
    "vefa_busdox-servicemetadata-0192-991825827.xml": (True, None),
    "vefa_busdox-servicemetadata-9908-12345678.xml": (True, BASWARE_AS4),
    "vefa_busdox-servicemetadata-9908-923829644.xml": (True, None),
    "vefa_busdox-servicemetadata-9908-98765432.xml": (True, None),
    "vefa_busdox-servicemetadata-9933-061828591.xml": (True, None),
    "vefa_busdox-servicemetadata-redirect-0192-991825827.xml": (True, None),
    "vefa_busdox-servicemetadata-redirected-0192-991825827.xml": (True, None),
    "vefa_peppol-doctype-wildcard-servicemetadata-9901-pint_c4_jp_sb.xml": (
        True, "https://c3.pint.playground.sandbox.peppol.eu/as4"),
    "vefa_bdxr201407-servicemetadata-9908-810418052.xml": (True, None),
}


def test_table_covers_every_signed_vector(smp_vectors: Path) -> None:
    files = {p.name for p in (smp_vectors / "smp-signed").glob("*.xml")}
    templates = {p for p in files if p.startswith("phoss_cef-")}
    assert files - templates == set(SIGNED)
    assert len(templates) == 3


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_real_signed_vectors(smp_vectors: Path, name: str) -> None:
    data = (smp_vectors / "smp-signed" / name).read_bytes()
    legacy_valid, usable_url = SIGNED[name]
    strict = verify_signature(data)
    assert not strict.valid, "all real vectors are RSA-SHA1 and must be refused in strict mode"
    assert any("SHA" in p for p in strict.problems)
    legacy = verify_signature(data, allow_sha1=True)
    assert legacy.valid is legacy_valid, legacy.problems
    if not legacy_valid:
        assert "SignatureValue" in legacy.problems[0]
        return
    metadata = parse_service_metadata(legacy.signed_root)
    if metadata.redirect is not None:
        assert usable_url is None
        return
    process = metadata.processes[0].process
    endpoint = select_endpoint(metadata, process, AS4_V2, at=VECTOR_NOW)
    assert (endpoint.url if endpoint else None) == usable_url


def test_strict_refusal_names_the_algorithm(smp_vectors: Path) -> None:
    check = verify_signature((smp_vectors / "smp-signed" / "pc_signed-service-metadata2.xml").read_bytes())
    assert "RSA_SHA1" in check.problems[0] and "SMP 1.3.0" in check.problems[0]
    assert check.subject == "C=GB,O=NetEDI Limited,OU=PEPPOL PRODUCTION SMP,CN=PNO000070"


def test_endpoint_chosen_by_profile_not_position(smp_vectors: Path) -> None:
    data = (smp_vectors / "smp-signed" / "vefa_busdox-servicemetadata-0192-991825827.xml").read_bytes()
    metadata = parse_service_metadata(verify_signature(data, allow_sha1=True).signed_root)
    assert metadata.endpoints[0].transport_profile != AS4_V2
    endpoint = select_endpoint(metadata, BIS3_PROCESS, at=datetime(2021, 6, 1, tzinfo=UTC))
    assert endpoint is not None and endpoint.transport_profile == AS4_V2
    assert select_endpoint(metadata, BIS3_PROCESS, "busdox-transport-as2-ver1p0",
                           at=datetime(2021, 6, 1, tzinfo=UTC)).url.endswith("/apno/as2")


def test_inclusive_c14n_reference_vector_picks_second_endpoint(smp_vectors: Path) -> None:
    data = (smp_vectors / "smp-signed" / "pc_signed-service-metadata3-c14n-inclusive.xml").read_bytes()
    metadata = parse_service_metadata(verify_signature(data, allow_sha1=True).signed_root)
    process = Ident("cenbii-procid-ubl", "urn:www.cenbii.eu:profile:bii04:ver1.0")
    endpoint = select_endpoint(metadata, process, at=datetime(2020, 8, 1, tzinfo=UTC))
    assert endpoint is not None and endpoint.url == "https://ap.econnect.eu/as4/v1"
    assert metadata.endpoints.index(endpoint) == 1


def test_g2_signers_are_trusted_inside_validity_only(smp_vectors: Path) -> None:
    pki = smp_vectors / "pki"

    def g2(root: str, smp_ca: str) -> CertificateValidator:
        return CertificateValidator(TrustAnchors("legacy-g2", tuple(load_certificates(pki / root)), (),
                                           tuple(load_certificates(pki / smp_ca))))

    prod = g2("pc_trustedca_2018_Peppol_Root_CA.cer", "pc_trustedca_2018_Peppol_ServiceMetadataPublisher_CA.cer")
    test = g2("pc_trustedca_2018_Peppol_Test_Root_CA.cer",
              "pc_trustedca_2018_Peppol_Test_ServiceMetadataPublisher_CA.cer")
    cases = [
        (prod, "pc_signed-service-metadata2.xml", datetime(2021, 1, 1, tzinfo=UTC)),
        (prod, "pc_signed-service-metadata3-c14n-inclusive.xml", datetime(2020, 8, 1, tzinfo=UTC)),
        (test, "vefa_busdox-servicemetadata-0192-12345678-1.xml", datetime(2023, 1, 1, tzinfo=UTC)),
        (test, "vefa_busdox-servicemetadata-redirect-0192-991825827.xml", datetime(2021, 6, 1, tzinfo=UTC)),
    ]
    for validator, name, inside in cases:
        check = verify_signature((smp_vectors / "smp-signed" / name).read_bytes(), allow_sha1=True)
        assert validator.validate(check.certificate, Purpose.SMP_SIGNING, inside).valid, name
        assert validator.validate(check.certificate, Purpose.SMP_SIGNING, VECTOR_NOW).reason == "expired", name
    greek = verify_signature(
        (smp_vectors / "smp-signed" / "vefa_busdox-servicemetadata-9933-061828591.xml").read_bytes(), allow_sha1=True)
    for validator in (prod, test):
        assert validator.validate(greek.certificate, Purpose.SMP_SIGNING, datetime(2016, 1, 1, tzinfo=UTC)).reason == \
            "unsupported-issuer"


def test_identifier_echo_mismatch_vector(smp_vectors: Path) -> None:
    data = (smp_vectors / "smp-signed" / "vefa_busdox-servicemetadata-0192-98765432-1.xml").read_bytes()
    metadata = parse_service_metadata(verify_signature(data, allow_sha1=True).signed_root)
    doctype = metadata.document_type
    problems = echo_problems(metadata, Ident("iso6523-actorid-upis", "0192:98765432"), doctype)
    assert len(problems) == 1 and "0192:12345678" in problems[0]
    assert echo_problems(metadata, Ident("iso6523-actorid-upis", "0192:12345678"), doctype) == []
    changed_case = Ident(doctype.scheme, doctype.value.replace("Invoice-2", "invoice-2"))
    assert "document type" in echo_problems(metadata, Ident("iso6523-actorid-upis", "0192:12345678"),
                                            changed_case)[0]


def test_vefa_redirect_and_its_target(smp_vectors: Path) -> None:
    folder = smp_vectors / "smp-signed"
    source = parse_service_metadata(verify_signature(
        (folder / "vefa_busdox-servicemetadata-redirect-0192-991825827.xml").read_bytes(), allow_sha1=True).signed_root)
    target = verify_signature(
        (folder / "vefa_busdox-servicemetadata-redirected-0192-991825827.xml").read_bytes(), allow_sha1=True)
    assert source.redirect is not None and source.redirect.href.startswith("http://test-smp2.difi.no/")
    assert source.redirect.certificate_uid == (
        "C=NO,O=Direktoratet for Forvaltning og IKT,OU=PEPPOL TEST SMP,CN=PNO000179")
    assert subject_matches(source.redirect.certificate_uid, target.certificate.subject)


def test_wildcard_identifier_text_is_trimmed(smp_vectors: Path) -> None:
    data = (smp_vectors / "smp-signed" / "vefa_peppol-doctype-wildcard-servicemetadata-9901-pint_c4_jp_sb.xml")
    metadata = parse_service_metadata(verify_signature(data.read_bytes(), allow_sha1=True).signed_root)
    assert metadata.document_type.scheme == "peppol-doctype-wildcard"
    assert metadata.document_type.value == (
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:peppol:pint:billing-3.0@jp:peppol-1*::2.1")
    assert [e.transport_profile for e in metadata.endpoints] == [AS4_V2]


def test_bdxr_2014_dialect(smp_vectors: Path) -> None:
    data = (smp_vectors / "smp-signed" / "vefa_bdxr201407-servicemetadata-9908-810418052.xml").read_bytes()
    metadata = parse_service_metadata(verify_signature(data, allow_sha1=True).signed_root)
    assert metadata.dialect == "bdxr-2014-07"
    assert metadata.endpoints[0].url == "https://test-aksesspunkt.difi.no/as2"
    assert metadata.endpoints[0].activation == datetime(2013, 11, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["phoss_cef-SignedServiceMetadata-template.xml", "phoss_cef-Redirect-template.xml"])
def test_templates_have_no_usable_signature(smp_vectors: Path, name: str) -> None:
    check = verify_signature((smp_vectors / "smp-signed" / name).read_bytes(), allow_sha1=True)
    assert not check.valid and check.certificate is None
    assert check.problems == (
        "ds:Signature has no SignedInfo", "ds:KeyInfo has no X509Data with the signer's certificate")


def test_templates_structure(smp_vectors: Path) -> None:
    folder = smp_vectors / "smp-signed"
    redirect = parse_service_metadata((folder / "phoss_cef-Redirect-template.xml").read_bytes())
    assert redirect.dialect == "bdxr-2016-05" and redirect.redirect.certificate_uid == "CERTIFICATE_UID_REDIRECT"
    with pytest.raises(ServiceMetadataError, match="ServiceActivationDate: 'SERVICE_ACTIVATION_DATE'"):
        parse_service_metadata((folder / "phoss_cef-SignedServiceMetadata-template.xml").read_bytes())
    group = parse_service_group((folder / "phoss_cef-ServiceGroup-template.xml").read_bytes())
    assert group.dialect == "bdxr-2016-05" and group.participant.uri == "ID_SCHEME::ID"


SERVICE_GROUPS = {
    "vefa_busdox-servicegroup-0192-991825827.xml": ("iso6523-actorid-upis::0192:991825827", 9, "busdox"),
    "vefa_busdox-servicegroup-9915-setcce-test.xml": (None, 1, "busdox"),
    "vefa_busdox-servicegroup-docslogistics.xml": ("iso6523-actorid-upis::9948:rs062525164", 25, "busdox"),
    "vefa_bdxr201407-servicegroup-9908-991825827.xml": ("iso6523-actorid-upis::9908:991825827", None, "bdxr-2014-07"),
    "vefa_bdxr201605-servicegroup-9908-991825827.xml": ("iso6523-actorid-upis::9908:991825827", None, "bdxr-2016-05"),
}


@pytest.mark.parametrize("name", sorted(SERVICE_GROUPS))
def test_service_groups(smp_vectors: Path, name: str) -> None:
    participant, count, dialect = SERVICE_GROUPS[name]
    group = parse_service_group((smp_vectors / "smp-servicegroup" / name).read_bytes())
    assert group.problems == ()
    assert group.dialect == dialect
    if participant:
        assert group.participant.uri == participant
    if count is not None:
        assert len(group.document_types) == count
    assert group.document_types
    for doctype in group.document_types:
        assert doctype.scheme == "busdox-docid-qns"
        assert "%" not in doctype.value and "/services/" not in doctype.value


def test_bdxr_service_group_variants_agree(smp_vectors: Path) -> None:
    folder = smp_vectors / "smp-servicegroup"
    a = parse_service_group((folder / "vefa_bdxr201407-servicegroup-9908-991825827.xml").read_bytes())
    b = parse_service_group((folder / "vefa_bdxr201605-servicegroup-9908-991825827.xml").read_bytes())
    assert set(a.document_types) == set(b.document_types)


def test_docslogistics_hrefs_decode_to_doctypes(smp_vectors: Path) -> None:
    group = parse_service_group(
        (smp_vectors / "smp-servicegroup" / "vefa_busdox-servicegroup-docslogistics.xml").read_bytes())
    first = group.document_types[0]
    assert first.value.startswith("urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##urn:")
    assert "#urn:www.peppol.eu:bis:peppol5a:ver1.0::2.0" in first.value


# ------------------------------------------------------------------------------------------- generated/


AP = "https://ap.example.test/as4"
WITH_RESPONSE = Ident("cenbii-procid-ubl", "urn:peppol:bis:billing_with_response")
# file -> (strict signature valid, signer certificate valid now, endpoint for billing:01 now)
GENERATED = {
    "gen_ssm-valid-rsasha256-c14n-smpA.xml": (True, True, AP),
    "gen_ssm-valid-prefixed-ds-smpA.xml": (True, True, AP),
    "gen_ssm-signxml-produced-one-transform-smpA.xml": (True, True, AP),
    "gen_ssm-signxml-produced-two-transforms-smpA.xml": (True, True, AP),
    "gen_ssm-legacy-rsasha1-excc14n-smpA.xml": (False, True, AP),
    "gen_ssm-bad-signaturevalue.xml": (False, True, AP),
    "gen_ssm-expired-signer.xml": (True, False, AP),
    "gen_ssm-participant-case-differs-smpA.xml": (True, True, AP),
    "gen_redirect-from-smpA-to-smpB.xml": (True, True, None),
    "gen_redirect-target-signed-by-smpB.xml": (True, True, AP),
    "gen_redirect-target-signed-by-wrong-smpA.xml": (True, True, AP),
    "gen_redirect-target-is-second-redirect-smpB.xml": (True, True, None),
}


def test_table_covers_every_generated_vector(smp_vectors: Path) -> None:
    files = {p.name for p in (smp_vectors / "generated").glob("gen_ssm-*.xml")}
    files |= {p.name for p in (smp_vectors / "generated").glob("gen_redirect-*.xml")}
    assert files == set(GENERATED)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_vectors(smp_vectors: Path, validator: CertificateValidator, name: str) -> None:
    sig_valid, cert_valid, endpoint_url = GENERATED[name]
    data = (smp_vectors / "generated" / name).read_bytes()
    check = verify_signature(data)
    assert check.valid is sig_valid, check.problems
    assert validator.validate(check.certificate, Purpose.SMP_SIGNING, VECTOR_NOW).valid is cert_valid
    metadata = parse_service_metadata(check.signed_root if check.valid else data)
    if endpoint_url is None:
        assert metadata.redirect is not None
        return
    assert echo_problems(metadata, PARTICIPANT, metadata.document_type) == []
    assert select_endpoint(metadata, BIS3_PROCESS, at=VECTOR_NOW).url == endpoint_url
    assert select_endpoint(metadata, WITH_RESPONSE, at=VECTOR_NOW) is None
    assert select_endpoint(metadata, WITH_RESPONSE, at=datetime(2099, 6, 1, tzinfo=UTC)) is not None
    assert select_endpoint(metadata, BIS3_PROCESS, "peppol-transport-as4-v1_0", at=VECTOR_NOW) is None


def test_two_transform_vector_is_accepted_with_a_warning(smp_vectors: Path) -> None:
    check = verify_signature((smp_vectors / "generated" / "gen_ssm-signxml-produced-two-transforms-smpA.xml")
                             .read_bytes())
    assert check.valid and "second Transform" in check.warnings[0]
    one = verify_signature((smp_vectors / "generated" / "gen_ssm-signxml-produced-one-transform-smpA.xml")
                           .read_bytes())
    assert one.valid and one.warnings == ()


def test_legacy_vector_only_in_legacy_mode(smp_vectors: Path) -> None:
    data = (smp_vectors / "generated" / "gen_ssm-legacy-rsasha1-excc14n-smpA.xml").read_bytes()
    assert verify_signature(data, allow_sha1=True).valid
    assert "RSA_SHA1" in verify_signature(data).problems[0]


def test_expired_signer_valid_inside_its_window(smp_vectors: Path, validator: CertificateValidator) -> None:
    check = verify_signature((smp_vectors / "generated" / "gen_ssm-expired-signer.xml").read_bytes())
    assert validator.validate(check.certificate, Purpose.SMP_SIGNING, VECTOR_NOW).reason == "expired"
    assert validator.validate(check.certificate, Purpose.SMP_SIGNING, datetime(2026, 3, 1, tzinfo=UTC)).valid


def test_participant_case_differs_is_accepted(smp_vectors: Path) -> None:
    data = (smp_vectors / "generated" / "gen_ssm-participant-case-differs-smpA.xml").read_bytes()
    metadata = parse_service_metadata(verify_signature(data).signed_root)
    assert metadata.participant.value == "9915:SMPDIGESTTEST"
    assert echo_problems(metadata, PARTICIPANT, metadata.document_type) == []
    assert echo_problems(metadata, Ident("ISO6523-ACTORID-UPIS", "9915:smpdigesttest"), metadata.document_type)


def test_generated_redirect_rdn_rule(smp_vectors: Path) -> None:
    folder = smp_vectors / "generated"
    redirect = parse_service_metadata(
        verify_signature((folder / "gen_redirect-from-smpA-to-smpB.xml").read_bytes()).signed_root).redirect
    assert redirect is not None and redirect.href.startswith("https://smp-b.example.test/")
    good = verify_signature((folder / "gen_redirect-target-signed-by-smpB.xml").read_bytes())
    wrong = verify_signature((folder / "gen_redirect-target-signed-by-wrong-smpA.xml").read_bytes())
    assert subject_matches(redirect.certificate_uid, good.certificate.subject)
    assert not subject_matches(redirect.certificate_uid, wrong.certificate.subject)
    second = parse_service_metadata(
        verify_signature((folder / "gen_redirect-target-is-second-redirect-smpB.xml").read_bytes()).signed_root)
    assert second.redirect is not None


def test_generated_service_groups(smp_vectors: Path) -> None:
    folder = smp_vectors / "generated"
    group = parse_service_group((folder / "gen_servicegroup-smpA.xml").read_bytes())
    assert group.participant == XmlId("iso6523-actorid-upis", "9915:SmpDigestTest")
    assert [d.value.split("::")[1].split("##")[0] for d in group.document_types] == ["Invoice", "CreditNote"]
    assert all(d.value.endswith("billing:3.0::2.1") for d in group.document_types)
    empty = parse_service_group((folder / "gen_servicegroup-empty-smpA.xml").read_bytes())
    assert empty.document_types == () and empty.problems == ()


@pytest.mark.parametrize(
    ("uid", "matches"),
    [
        ("CN=PXX000002,OU=PEPPOL TEST SMP,O=Example SMP B,C=XX", True),
        ("C=XX, O=Example SMP B, OU=PEPPOL TEST SMP, CN=PXX000002", True),
        ("c=XX;o=example smp b;ou=PEPPOL  TEST SMP;cn=pxx000002", True),
        ("CN=PXX000002,OU=PEPPOL TEST SMP,O=Example SMP B", False),
        ("CN=PXX000002,OU=PEPPOL TEST SMP,O=Example SMP B,C=XX,L=Extra", False),
        ("CN=PXX000001,OU=PEPPOL TEST SMP,O=Example SMP B,C=XX", False),
        ("not a name", False),
    ],
)
def test_subject_matches_as_rdn_set(smp_b, uid: str, matches: bool) -> None:
    assert subject_matches(uid, smp_b.certificate.subject) is matches
