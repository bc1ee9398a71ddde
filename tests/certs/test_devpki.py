"""The dev PKI: files, certificate profile, overwrite protection, concurrent first start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.devpki import DevPki, DevPkiError, ensure_dev_pki, init_pki, issue_leaf, load_pki
from certs.keystore import load_certificates, load_pem, load_pkcs12

ROOT = Path(__file__).resolve().parents[2]


def test_init_creates_every_file(dev_pki: DevPki) -> None:
    for path in dev_pki.files():
        assert path.is_file(), path
    assert dev_pki.password == "peppol"
    assert [c.subject for c in load_certificates(dev_pki.truststore_pem)] == [
        load_certificates(p)[0].subject for p in (dev_pki.root_ca, dev_pki.ap_ca, dev_pki.smp_ca)
    ]


def test_ca_names_say_local(dev_pki: DevPki) -> None:
    for path in (dev_pki.root_ca, dev_pki.ap_ca, dev_pki.smp_ca):
        subject = load_certificates(path)[0].subject.rfc4514_string()
        assert "LOCAL DEV" in subject and "FOR LOCAL TESTING ONLY" in subject


def test_ap_keystore_holds_peppol_shaped_leaf_and_chain(dev_pki: DevPki) -> None:
    material = load_pkcs12(dev_pki.ap_p12, dev_pki.password)
    material.check_usable()
    cert = material.certificate
    assert material.subject_cn == "POP000001"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "PEPPOL TEST AP"
    assert cert.issuer == load_certificates(dev_pki.ap_ca)[0].subject
    assert [c.subject for c in material.chain] == [
        load_certificates(dev_pki.ap_ca)[0].subject,
        load_certificates(dev_pki.root_ca)[0].subject,
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.public_key().key_size == 2048


def test_smp_pem_files_load(dev_pki: DevPki) -> None:
    material = load_pem(dev_pki.smp_key, dev_pki.smp_cert)
    material.check_usable()
    ou = material.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert ou == "PEPPOL TEST SMP"
    assert material.certificate.issuer == load_certificates(dev_pki.smp_ca)[0].subject


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = init_pki(tmp_path / "pki", ap_seat_id="PSE000001")
    before = first.root_ca.read_bytes()
    with pytest.raises(DevPkiError, match="already exists"):
        init_pki(tmp_path / "pki")
    assert first.root_ca.read_bytes() == before
    second = init_pki(tmp_path / "pki", ap_seat_id="PSE000002", password="other", force=True)
    assert second.root_ca.read_bytes() != before
    assert load_pkcs12(second.ap_p12, "other").subject_cn == "PSE000002"
    assert json.loads((tmp_path / "pki" / "pki.json").read_text())["ap_seat_id"] == "PSE000002"


def test_init_into_existing_directory_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "README").write_text("mine")
    pki = init_pki(tmp_path / "pki")
    assert (tmp_path / "pki" / "README").read_text() == "mine"
    assert load_pki(tmp_path / "pki") == pki


def test_crl_and_ocsp_urls_go_into_leaves(tmp_path: Path) -> None:
    pki = init_pki(tmp_path / "pki", crl_url="http://127.0.0.1:1/ap.crl", ocsp_url="http://127.0.0.1:1/ocsp")
    cert = load_certificates(pki.ap_cert)[0]
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name[0].value == "http://127.0.0.1:1/ap.crl"
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == "http://127.0.0.1:1/ocsp"


def test_load_pki_explains_missing_and_incomplete(tmp_path: Path) -> None:
    with pytest.raises(DevPkiError, match="pki init"):
        load_pki(tmp_path)
    pki = init_pki(tmp_path / "pki")
    pki.smp_p12.unlink()
    with pytest.raises(DevPkiError, match=r"incomplete \(missing smp.p12\)"):
        load_pki(tmp_path / "pki")


def test_ensure_dev_pki_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "something").write_text("x")
    with pytest.raises(DevPkiError, match="holds no dev PKI"):
        ensure_dev_pki(tmp_path / "pki")
    assert [p.name for p in tmp_path.iterdir()] == ["pki"]


def test_ensure_dev_pki_two_processes_at_once(tmp_path: Path) -> None:
    target = tmp_path / "var" / "pki"
    code = (
        "import sys; from certs.devpki import ensure_dev_pki; "
        "print(ensure_dev_pki(sys.argv[1]).root_ca.read_text(), end=\"\")"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                         env={"PYTHONPATH": str(ROOT)}, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1] == target.joinpath("root-ca.pem").read_text()
    # The loser's temporary directory is gone; only the PKI remains.
    assert [p.name for p in target.parent.iterdir()] == ["pki"]
    assert ensure_dev_pki(target).root_ca.read_text() == outputs[0]


def test_issue_leaf_for_smp_with_custom_usage(dev_pki: DevPki, leaf_dir: Path) -> None:
    leaf = issue_leaf(dev_pki, role="smp", cn="PSE000099", key_usage=("digital_signature",), out_dir=leaf_dir)
    assert leaf.p12 == leaf_dir / "smp-pse000099.p12"
    ku = leaf.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    assert leaf.certificate.issuer == load_certificates(dev_pki.smp_ca)[0].subject
    material = load_pkcs12(leaf.p12, dev_pki.password)
    assert material.certificate == leaf.certificate
    assert load_pem(leaf.key_pem, leaf.cert_pem).certificate == leaf.certificate


def test_issue_leaf_rejects_unknown_role_and_usage(dev_pki: DevPki, leaf_dir: Path) -> None:
    with pytest.raises(ValueError, match="role"):
        issue_leaf(dev_pki, role="sml", cn="POP000001", out_dir=leaf_dir)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown key usage"):
        issue_leaf(dev_pki, cn="POP000001", key_usage=("signing",), out_dir=leaf_dir)


def test_local_configuration_uses_the_dev_pki(tmp_path: Path) -> None:
    from accesspoint.config import key_material, load_config, trust_anchors
    from certs.validation import CertificateValidator, Purpose

    cfg = load_config(environ={"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path / "var")})
    material = key_material(cfg)
    assert material.subject_cn == "POP000001"
    assert (tmp_path / "var" / "pki" / "pki.json").is_file()
    anchors = trust_anchors(cfg)
    assert anchors.environment == "local"
    verdict = CertificateValidator(anchors).validate(material.certificate, Purpose.AP_SIGNING)
    assert verdict.valid, verdict.detail
    # A second start loads the same PKI instead of making a new one.
    assert key_material(cfg).certificate == material.certificate


def test_init_refuses_a_file_as_directory(tmp_path: Path) -> None:
    (tmp_path / "pki").write_text("not a directory")
    with pytest.raises(DevPkiError, match="is a file"):
        init_pki(tmp_path / "pki")
