"""`peppol-ap smp inspect` over every vector file and `peppol-ap lookup` against the test world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from accesspoint.cli.main import cli
from certs.keystore import KeyMaterial
from smp.identifiers import BIS3_INVOICE
from tests.conftest import VECTORS
from tests.smp.conftest import PARTICIPANT, Ident
from tests.smp.smpserver import ZONE, EndpointSpec, World, service_information, sign

AT = "2026-11-21T12:00:00Z"
AP = "https://ap.example.test/as4"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def inspect_json(path: Path, *options: str) -> tuple[int, dict]:
    code, output = run("smp", "inspect", str(path), "--json", "--at", AT, *options)
    return code, json.loads(output)


@pytest.fixture(scope="module")
def trust(pki: Path) -> tuple[str, ...]:
    return ("--trust", str(pki / "test-smp-ca.cert.pem"), "--trust", str(pki / "test-root-ca.cert.pem"))


# file -> (exit status, signature valid, certificate valid, redirect host or None)
GENERATED = {
    "gen_ssm-valid-rsasha256-c14n-smpA.xml": (0, True, True, None),
    "gen_ssm-valid-prefixed-ds-smpA.xml": (0, True, True, None),
    "gen_ssm-signxml-produced-one-transform-smpA.xml": (0, True, True, None),
    "gen_ssm-signxml-produced-two-transforms-smpA.xml": (0, True, True, None),
    "gen_ssm-legacy-rsasha1-excc14n-smpA.xml": (1, False, True, None),
    "gen_ssm-bad-signaturevalue.xml": (1, False, True, None),
    "gen_ssm-expired-signer.xml": (1, True, False, None),
    "gen_ssm-participant-case-differs-smpA.xml": (0, True, True, None),
    "gen_redirect-from-smpA-to-smpB.xml": (0, True, True, "https://smp-b.example.test/"),
    "gen_redirect-target-signed-by-smpB.xml": (0, True, True, None),
    "gen_redirect-target-signed-by-wrong-smpA.xml": (0, True, True, None),
    "gen_redirect-target-is-second-redirect-smpB.xml": (0, True, True, "https://smp-c.example.test/"),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_inspect_generated(smp_vectors: Path, trust: tuple[str, ...], name: str) -> None:
    code, report = inspect_json(smp_vectors / "generated" / name, *trust)
    exit_code, sig_valid, cert_valid, redirect = GENERATED[name]
    assert code == exit_code, report
    assert report["valid"] is (exit_code == 0)
    assert report["signature"]["valid"] is sig_valid
    assert report["signature"]["signer_subject"].startswith("CN=PXX00000")
    assert report["certificate"]["valid"] is cert_valid
    assert "reason" in report["certificate"]
    if redirect:
        assert report["redirect"].startswith(redirect)
        assert report["endpoints"] == []
        return
    assert report["redirect"] is None
    assert report["participant"].lower() == PARTICIPANT.uri.lower()
    assert report["document_type"] == BIS3_INVOICE.uri
    first = report["endpoints"][0]
    assert first == {**first, "transport_profile": "peppol-transport-as4-v2_0", "url": AP,
                     "certificate_subject": "CN=PXX000003,OU=PEPPOL TEST AP,O=Example AP C,C=XX",
                     "activation": "2026-01-01T00:00:00+00:00", "expiration": "2030-12-31T23:59:59+00:00"}


def test_inspect_legacy_and_expired_with_options(smp_vectors: Path, trust: tuple[str, ...]) -> None:
    folder = smp_vectors / "generated"
    code, report = inspect_json(folder / "gen_ssm-legacy-rsasha1-excc14n-smpA.xml", *trust, "--legacy-sha1")
    assert code == 0 and report["signature"]["algorithm"].endswith("rsa-sha1")
    code, report = run("smp", "inspect", str(folder / "gen_ssm-expired-signer.xml"), *trust, "--json",
                       "--at", "2026-03-01T00:00:00Z")
    assert code == 0, report
    code, report = inspect_json(folder / "gen_ssm-expired-signer.xml", *trust)
    assert report["certificate"]["reason"] == "expired"


def test_inspect_selects_endpoint_for_process(smp_vectors: Path, trust: tuple[str, ...]) -> None:
    path = smp_vectors / "generated" / "gen_ssm-valid-rsasha256-c14n-smpA.xml"
    process = "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    code, report = inspect_json(path, *trust, "--process", process)
    assert code == 0 and report["selected_endpoint"]["url"] == AP
    code, report = inspect_json(path, *trust, "--process", "urn:peppol:bis:billing_with_response")
    assert code == 0 and report["selected_endpoint"] is None


def test_inspect_checks_endpoint_certificates_with_ap_trust(smp_vectors: Path, pki: Path,
                                                             trust: tuple[str, ...]) -> None:
    path = smp_vectors / "generated" / "gen_ssm-valid-rsasha256-c14n-smpA.xml"
    code, report = inspect_json(path, *trust, "--ap-trust", str(pki / "test-ap-ca.cert.pem"))
    assert code == 0
    assert all(e["certificate_verdict"]["valid"] for e in report["endpoints"])


def test_inspect_text_output(smp_vectors: Path, trust: tuple[str, ...]) -> None:
    code, output = run("smp", "inspect", str(smp_vectors / "generated" / "gen_ssm-bad-signaturevalue.xml"),
                       *trust, "--at", AT)
    assert code == 1
    assert "signature    INVALID" in output
    assert "problem      signature: SignatureValue does not verify" in output
    assert output.rstrip().endswith("verdict      NOT valid")
    code, output = run("smp", "inspect", str(smp_vectors / "generated" / "gen_ssm-valid-prefixed-ds-smpA.xml"),
                       *trust, "--at", AT)
    assert code == 0 and "endpoint   peppol-transport-as4-v2_0 https://ap.example.test/as4" in output
    assert output.rstrip().endswith("verdict      OK")


@pytest.mark.parametrize("name", sorted(p.name for p in (VECTORS / "smp" / "smp-signed").glob("*.xml")
                                         if p.name != "phoss_cef-ServiceGroup-template.xml"))
def test_inspect_real_signed_vectors_are_not_valid_now(smp_vectors: Path, name: str) -> None:
    path = smp_vectors / "smp-signed" / name
    code, report = inspect_json(path, "--env", "test")
    assert code == 1
    assert report["valid"] is False
    if name.startswith("phoss_cef-"):
        return
    # Strict mode: every real vector is RSA-SHA1; in legacy mode the signers are G2 and not trusted by G3.
    assert report["signature"]["valid"] is False
    code, report = inspect_json(path, "--env", "test", "--legacy-sha1")
    assert code == 1
    assert report["signature"]["valid"] is (name != "pc_signed-service-metadata1.xml")
    assert report["certificate"]["valid"] is False


def test_inspect_legacy_vector_with_g2_trust_inside_validity(smp_vectors: Path) -> None:
    pki = smp_vectors / "pki"
    code, report = run(
        "smp", "inspect", str(smp_vectors / "smp-signed" / "pc_signed-service-metadata2.xml"), "--json",
        "--legacy-sha1", "--at", "2021-01-01T00:00:00Z",
        "--trust", str(pki / "pc_trustedca_2018_Peppol_Root_CA.cer"),
        "--trust", str(pki / "pc_trustedca_2018_Peppol_ServiceMetadataPublisher_CA.cer"),
    )
    assert code == 0, report
    assert json.loads(report)["participant"] == "iso6523-actorid-upis::0088:5060482240009"


def test_inspect_service_group_template(smp_vectors: Path) -> None:
    code, report = inspect_json(smp_vectors / "smp-signed" / "phoss_cef-ServiceGroup-template.xml")
    assert code == 0 and report["dialect"] == "bdxr-2016-05" and report["participant"] == "ID_SCHEME::ID"


@pytest.mark.parametrize("folder", ["smp-servicegroup", "generated"])
def test_inspect_service_groups(smp_vectors: Path, folder: str) -> None:
    for path in sorted((smp_vectors / folder).glob("*servicegroup*.xml")):
        code, report = inspect_json(path)
        assert code == 0, path
        assert report["kind"] == "ServiceGroup" and report["signature"] is None and report["redirect"] is None
        assert isinstance(report["document_types"], list)
    _, report = inspect_json(smp_vectors / "smp-servicegroup" / "vefa_busdox-servicegroup-docslogistics.xml")
    assert len(report["document_types"]) == 25


def test_inspect_unreadable_and_malformed(tmp_path: Path) -> None:
    code, output = run("smp", "inspect", str(tmp_path / "missing.xml"))
    assert code == 2 and "cannot read" in output
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")
    code, output = run("smp", "inspect", str(bad), "--json")
    assert code == 1 and "DOCTYPE" in json.loads(output)["problems"][0]


# ------------------------------------------------------------------------------------------- lookup


def lookup(world: World, pki: Path, participant: str, *extra: str) -> tuple[int, str]:
    return run(
        "lookup", participant, "--zone", ZONE, "--dns-server", f"127.0.0.1:{world.dns_port}",
        "--trust", str(pki / "test-smp-ca.cert.pem"), "--trust", str(pki / "test-root-ca.cert.pem"),
        "--ap-trust", str(pki / "test-ap-ca.cert.pem"), "--no-revocation", "--at", AT, *extra,
    )


def test_lookup_registered(world: World, pki: Path, smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:
    participant = ("iso6523-actorid-upis", "9915:clitest")
    world.register(Ident(*participant), world.smp_a.base)
    spec = EndpointSpec(("cenbii-procid-ubl", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"), AP, ap_c.certificate)
    world.smp_a.serve(participant, (BIS3_INVOICE.scheme, BIS3_INVOICE.value),
                      sign(service_information(participant, (BIS3_INVOICE.scheme, BIS3_INVOICE.value), [spec]), smp_a))
    world.smp_a.serve(participant, None, b"<?xml version='1.0'?><ServiceGroup xmlns="
                      b"'http://busdox.org/serviceMetadata/publishing/1.0/' xmlns:ids="
                      b"'http://busdox.org/transport/identifiers/1.0/'><ids:ParticipantIdentifier scheme="
                      b"'iso6523-actorid-upis'>9915:clitest</ids:ParticipantIdentifier>"
                      b"<ServiceMetadataReferenceCollection/></ServiceGroup>")
    code, output = lookup(world, pki, "9915:clitest", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["valid"] is True and report["error"] is None
    assert report["result"]["endpoint_url"] == AP
    assert report["result"]["certificate_subject"] == "CN=PXX000003,OU=PEPPOL TEST AP,O=Example AP C,C=XX"
    assert [s["stage"] for s in report["steps"]][:3] == ["dns", "naptr", "services"]
    code, output = lookup(world, pki, "iso6523-actorid-upis::9915:CLITEST")
    assert code == 0, output
    for label in ("dns ", "naptr ", "smp uri ", "services ", "signature ", "endpoint ", "ap-certificate",
                  "revocation   NOT checked"):
        assert label in output
    assert "verdict      OK: send to https://ap.example.test/as4" in output


def test_lookup_not_registered(world: World, pki: Path) -> None:
    code, output = lookup(world, pki, "9915:nobody-cli", "--json")
    assert code == 1
    report = json.loads(output)
    assert report["error"]["kind"] == "participant-not-registered"
    assert "NXDOMAIN" in report["error"]["message"] and report["error"]["hint"]
    code, output = lookup(world, pki, "9915:nobody-cli")
    assert code == 1 and "verdict      FAILED (participant-not-registered)" in output


def test_lookup_bad_participant_is_a_usage_error(world: World, pki: Path) -> None:
    code, output = lookup(world, pki, "not-a-participant")
    assert code == 2 and output.startswith("peppol-ap: ")
