"""Certificate validation: dev-PKI leaves for every reason, and the real vectors."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from certs.anchors import TrustAnchors, peppol_anchors
from certs.devpki import DevPki, issue_leaf
from certs.keystore import load_certificates
from certs.validation import CertificateValidator, Purpose, Verdict

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def validator(dev_pki: DevPki) -> CertificateValidator:
    return CertificateValidator(dev_pki.anchors())


def _cert(path: Path) -> x509.Certificate:
    return load_certificates(path)[0]


def test_dev_ap_leaf_is_valid_for_signing_and_encryption(validator: CertificateValidator, dev_pki: DevPki) -> None:
    cert = _cert(dev_pki.ap_cert)
    for purpose in (Purpose.AP_SIGNING, Purpose.AP_ENCRYPTION):
        verdict = validator.validate(cert, purpose)
        assert (verdict.valid, verdict.reason) == (True, None)
        assert "revocation NOT checked" in verdict.detail
        assert verdict.subject == cert.subject.rfc4514_string()
        assert verdict.issuer == cert.issuer.rfc4514_string()
        assert verdict.not_after == cert.not_valid_after_utc
        assert verdict.revocation is None


def test_dev_smp_leaf_is_valid_for_smp_signing_only(validator: CertificateValidator, dev_pki: DevPki) -> None:
    cert = _cert(dev_pki.smp_cert)
    assert validator.validate(cert, Purpose.SMP_SIGNING).valid
    verdict = validator.validate(cert, Purpose.AP_SIGNING)
    assert verdict.reason == "unsupported-issuer"
    assert "SMP CA" in verdict.detail and "only the AP CA" in verdict.detail


def test_ap_leaf_is_not_an_smp_certificate(validator: CertificateValidator, dev_pki: DevPki) -> None:
    verdict = validator.validate(_cert(dev_pki.ap_cert), Purpose.SMP_SIGNING)
    assert verdict.reason == "unsupported-issuer"


def test_expired_leaf(validator: CertificateValidator, dev_pki: DevPki, leaf_dir: Path) -> None:
    leaf = issue_leaf(dev_pki, cn="POP000010", not_before=NOW - timedelta(days=10),
                      not_after=NOW - timedelta(days=1), out_dir=leaf_dir)
    verdict = validator.validate(leaf.certificate, Purpose.AP_SIGNING)
    assert (verdict.valid, verdict.reason) == (False, "expired")
    assert "expired on" in verdict.detail


def test_not_yet_valid_leaf(validator: CertificateValidator, dev_pki: DevPki, leaf_dir: Path) -> None:
    leaf = issue_leaf(dev_pki, cn="POP000011", not_before=NOW + timedelta(days=1), out_dir=leaf_dir)
    verdict = validator.validate(leaf.certificate, Purpose.AP_SIGNING)
    assert verdict.reason == "not-yet-valid"
    # The same certificate is fine once its window has started.
    assert validator.validate(leaf.certificate, Purpose.AP_SIGNING, at=NOW + timedelta(days=2)).valid


def test_an_ap_certificate_needs_both_key_usages_for_either_purpose(validator: CertificateValidator,
                                                                    dev_pki: DevPki, leaf_dir: Path) -> None:
    # One AP certificate signs and is encrypted for; the G3 profile gives it both usages (and dataEncipherment).
    encrypt_only = issue_leaf(dev_pki, cn="POP000012", key_usage=("key_encipherment",), out_dir=leaf_dir)
    sign_only = issue_leaf(dev_pki, cn="POP000013", key_usage=("digital_signature",), out_dir=leaf_dir)
    both = issue_leaf(dev_pki, cn="POP000014", key_usage=("digital_signature", "key_encipherment"), out_dir=leaf_dir)
    for purpose in (Purpose.AP_SIGNING, Purpose.AP_ENCRYPTION):
        verdict = validator.validate(encrypt_only.certificate, purpose)
        assert verdict.reason == "bad-key-usage" and "lacks digitalSignature" in verdict.detail
        verdict = validator.validate(sign_only.certificate, purpose)
        assert verdict.reason == "bad-key-usage" and "lacks keyEncipherment" in verdict.detail
        assert validator.validate(both.certificate, purpose).valid


def test_ap_cn_must_be_a_seat_id(validator: CertificateValidator, dev_pki: DevPki, leaf_dir: Path) -> None:
    for cn in ("gateway-1", "POP00001", "pop000001", "POP0000011"):
        leaf = issue_leaf(dev_pki, cn=cn, name=f"bad-{cn}", out_dir=leaf_dir)
        verdict = validator.validate(leaf.certificate, Purpose.AP_SIGNING)
        assert verdict.reason == "bad-subject", cn
        assert "seat ID" in verdict.detail
    # SMP certificates are not held to the seat-ID rule.
    smp = issue_leaf(dev_pki, role="smp", cn="smp.example.test", out_dir=leaf_dir)
    assert validator.validate(smp.certificate, Purpose.SMP_SIGNING).valid


def test_forged_issuer_dn_is_a_bad_signature(validator: CertificateValidator, other_pki: DevPki) -> None:
    # other_pki's AP CA has the same name as dev_pki's, but a different key.
    forged = _cert(other_pki.ap_cert)
    assert forged.issuer == validator.anchors.ap_cas[0].subject
    verdict = validator.validate(forged, Purpose.AP_SIGNING)
    assert (verdict.valid, verdict.reason) == (False, "bad-signature")
    assert "does not verify" in verdict.detail


def test_several_cas_with_one_name_each_get_a_chance(dev_pki: DevPki, other_pki: DevPki) -> None:
    anchors = TrustAnchors("local", (), other_pki.anchors().ap_cas + dev_pki.anchors().ap_cas, ())
    assert CertificateValidator(anchors).validate(_cert(dev_pki.ap_cert), Purpose.AP_SIGNING).valid


def test_issuing_ca_outside_its_validity(validator: CertificateValidator, dev_pki: DevPki) -> None:
    later = _cert(dev_pki.ap_ca).not_valid_after_utc + timedelta(days=1)
    verdict = validator.validate(_cert(dev_pki.ap_cert), Purpose.AP_SIGNING, at=later)
    assert verdict.reason == "expired" and "issuing CA" in verdict.detail


def test_ca_certificate_is_not_a_leaf(dev_pki: DevPki) -> None:
    anchors = TrustAnchors("local", (), dev_pki.anchors().roots, ())
    verdict = CertificateValidator(anchors).validate(_cert(dev_pki.ap_ca), Purpose.AP_SIGNING)
    assert verdict.reason == "bad-key-usage" and "CA certificate" in verdict.detail


def test_no_certificate(validator: CertificateValidator) -> None:
    verdict = validator.validate(None, Purpose.AP_SIGNING)
    assert (verdict.valid, verdict.reason) == (False, "no-certificate")


def test_naive_time_is_refused(validator: CertificateValidator, dev_pki: DevPki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validator.validate(_cert(dev_pki.ap_cert), Purpose.AP_SIGNING, at=datetime(2026, 1, 1))


def test_verdict_to_dict_is_json(validator: CertificateValidator, dev_pki: DevPki) -> None:
    verdict = validator.validate(_cert(dev_pki.ap_cert), "ap-signing")  # type: ignore[arg-type]
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["valid"] is True and data["reason"] is None
    assert data["not_before"] == verdict.not_before.isoformat()  # type: ignore[union-attr]
    assert data["revocation"] is None


# -- the reference vectors -------------------------------------------------------------------------

AT = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def test_env() -> CertificateValidator:
    return CertificateValidator(peppol_anchors("test"))


def test_g2_leaf_is_unsupported_issuer(test_env: CertificateValidator, vectors: Path) -> None:
    cert = _cert(vectors / "pki/test-vectors/peppol-ap-test-leaf-g2-expired.pem")
    for at in (None, datetime(2023, 1, 1, tzinfo=UTC)):
        verdict = test_env.validate(cert, Purpose.AP_SIGNING, at=at)
        assert verdict.reason == "unsupported-issuer"
        assert "PEPPOL ACCESS POINT TEST CA - G2" in verdict.detail


def test_real_g3_smp_leaf(test_env: CertificateValidator, vectors: Path) -> None:
    cert = _cert(vectors / "smp/pki/vefa_smp-random-test.cer")
    verdict = test_env.validate(cert, Purpose.SMP_SIGNING, at=AT)
    assert verdict.valid, verdict.detail
    assert test_env.validate(cert, Purpose.AP_SIGNING, at=AT).reason == "unsupported-issuer"
    assert test_env.validate(cert, Purpose.AP_ENCRYPTION, at=AT).reason == "unsupported-issuer"
    # The production anchors never accept a test certificate.
    prod = CertificateValidator(peppol_anchors("production")).validate(cert, Purpose.SMP_SIGNING, at=AT)
    assert prod.reason == "unsupported-issuer"


def test_non_peppol_ca_is_unsupported_issuer(test_env: CertificateValidator, vectors: Path) -> None:
    cert = _cert(vectors / "as4/keys/non-peppol-ca.chain.pem")
    assert test_env.validate(cert, Purpose.AP_SIGNING, at=AT).reason == "unsupported-issuer"


def _signer_from_phase4_message(vectors: Path) -> x509.Certificate:
    raw = (vectors / "as4/messages/um-phase4-peppol-signed-encrypted.mime").read_bytes()
    tokens = re.findall(rb'wsu:Id="(X509-[^"]+)">([^<]+)<', raw)
    assert len(tokens) == 1
    return x509.load_der_x509_certificate(base64.b64decode(b"".join(tokens[0][1].split())))


def test_real_g3_ap_leaf_from_phase4_message(test_env: CertificateValidator, vectors: Path) -> None:
    cert = _signer_from_phase4_message(vectors)
    verdict: Verdict = test_env.validate(cert, Purpose.AP_SIGNING, at=AT)
    assert verdict.valid, verdict.detail
    assert verdict.subject.startswith("CN=POP000306,")
    assert "PEPPOL ACCESS POINT TEST CA - G3" in verdict.issuer
    assert test_env.validate(cert, Purpose.AP_ENCRYPTION, at=AT).valid
    assert test_env.validate(cert, Purpose.AP_SIGNING, at=datetime(2027, 9, 1, tzinfo=UTC)).reason == "expired"
    assert test_env.validate(cert, Purpose.AP_SIGNING, at=datetime(2025, 9, 1, tzinfo=UTC)).reason == "not-yet-valid"


def test_ap_certificate_with_two_cns(validator: CertificateValidator, dev_pki: DevPki, leaf_dir: Path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    ca, ca_key = dev_pki.ca("ap")
    template = issue_leaf(dev_pki, cn="POP000020", out_dir=leaf_dir).certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "POP000020"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, "POP000021")]))
        .issuer_name(ca.subject)
        .public_key(template.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
    )
    for extension in template.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    verdict = validator.validate(builder.sign(ca_key, hashes.SHA256()), Purpose.AP_SIGNING)
    assert verdict.reason == "bad-subject" and "2 CNs" in verdict.detail
