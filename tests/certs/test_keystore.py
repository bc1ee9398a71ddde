"""Loading our key material: the real (expired) POP000306 PKCS#12 vector, PEM files, failures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from certs.keystore import KeystoreError, load_certificates, load_pem, load_pkcs12

P12 = "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"
KEY = "as4/keys/peppol-test-ap-POP000306-EXPIRED.key.pem"
CHAIN = "as4/keys/peppol-test-ap-POP000306-EXPIRED.chain.pem"


def test_pkcs12_vector(vectors: Path) -> None:
    material = load_pkcs12(vectors / P12, "peppol")
    assert material.subject_cn == "POP000306"
    assert [c.subject.rfc4514_string() for c in material.chain] == [
        "CN=PEPPOL ACCESS POINT TEST CA - G2,OU=FOR TEST ONLY,O=OpenPEPPOL AISBL,C=BE",
        "CN=PEPPOL Root TEST CA - G2,OU=FOR TEST ONLY,O=OpenPEPPOL AISBL,C=BE",
    ]
    material.check_usable(at=datetime(2020, 6, 1, tzinfo=UTC))


def test_pkcs12_password_as_bytes(vectors: Path) -> None:
    assert load_pkcs12(vectors / P12, b"peppol").subject_cn == "POP000306"


def test_expired_certificate_is_not_usable(vectors: Path) -> None:
    material = load_pkcs12(vectors / P12, "peppol")
    with pytest.raises(KeystoreError, match=r"POP000306.*expired on 2021-06-20"):
        material.check_usable()
    with pytest.raises(KeystoreError, match="not valid before 2019-07-01"):
        material.check_usable(at=datetime(2019, 1, 1, tzinfo=UTC))


def test_wrong_password_does_not_leak_it(vectors: Path) -> None:
    with pytest.raises(KeystoreError, match="wrong password") as info:
        load_pkcs12(vectors / P12, "Sup3rS3cret!")
    assert "Sup3rS3cret" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_not_a_pkcs12_file(vectors: Path) -> None:
    with pytest.raises(KeystoreError, match="not a PKCS#12"):
        load_pkcs12(vectors / CHAIN, "peppol")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="PKCS#12 file not found"):
        load_pkcs12(tmp_path / "nope.p12", "peppol")


def test_pem_key_and_chain(vectors: Path) -> None:
    material = load_pem(vectors / KEY, vectors / CHAIN)
    assert material.subject_cn == "POP000306"
    assert len(material.chain) == 2
    assert material.certificate == load_pkcs12(vectors / P12, "peppol").certificate
    material.check_usable(at=datetime(2020, 6, 1, tzinfo=UTC))


def test_pem_with_separate_chain_file(vectors: Path, tmp_path: Path) -> None:
    certs = (vectors / CHAIN).read_text().split("-----END CERTIFICATE-----")
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(certs[0] + "-----END CERTIFICATE-----\n")
    material = load_pem(vectors / KEY, leaf, vectors / "as4/truststores/peppol-test-G2-cas.pem")
    assert material.subject_cn == "POP000306"
    # The chain file order is kept as given (this one lists the root first).
    assert {c.subject.rfc4514_string() for c in material.chain} == {
        c.subject.rfc4514_string() for c in load_certificates(vectors / CHAIN)[1:]
    }


def test_mismatched_key_and_certificate(vectors: Path) -> None:
    material = load_pem(vectors / "as4/keys/non-peppol-ca.key.pem", vectors / CHAIN)
    with pytest.raises(KeystoreError, match="does not match"):
        material.check_usable(at=datetime(2020, 6, 1, tzinfo=UTC))


def test_garbage_key_file(vectors: Path) -> None:
    with pytest.raises(KeystoreError, match="not a PEM key"):
        load_pem(vectors / CHAIN, vectors / CHAIN)


def test_der_certificate(vectors: Path) -> None:
    cert = load_certificates(vectors / "smp/pki/vefa_smp-random-test.cer")[0]
    assert "PSE000018" in cert.subject.rfc4514_string()


def test_file_without_certificates(tmp_path: Path) -> None:
    path = tmp_path / "empty.pem"
    path.write_text("-----BEGIN NOTHING-----\n-----END NOTHING-----\n")
    with pytest.raises(KeystoreError, match=r"no readable X\.509 certificate|holds no certificate"):
        load_certificates(path)
