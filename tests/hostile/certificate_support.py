"""AP certificates from the gateway's own dev AP CA that break one rule of the Peppol certificate policy: another
extended key usage, too small a key, a missing key usage. Everything else is as certs.devpki issues it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certs.devpki import load_pki
from certs.keystore import KeyMaterial

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
BOTH_USAGES = ("digital_signature", "key_encipherment")


def issue_certificate(pki_dir: Path, cn: str, *, key: PrivateKey | None = None,
                      usages: tuple[str, ...] = BOTH_USAGES,
                      extended: list[x509.ObjectIdentifier] | None = None) -> tuple[PrivateKey, x509.Certificate]:
    """A leaf of the dev AP CA in `pki_dir`: a 2048-bit RSA key unless `key` is given; `extended` None leaves the
    extended key usage extension out (the dev PKI's leaves carry clientAuth)."""
    ca_cert, ca_key = load_pki(pki_dir).ca("ap")
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    flags = {name: name in usages for name in ("digital_signature", "content_commitment", "key_encipherment",
                                               "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")}
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                                 x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PEPPOL TEST AP"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), critical=True)
    )
    if extended is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=True)
    return key, builder.sign(ca_key, hashes.SHA256())


def ap_key_material(pki_dir: Path, cn: str, *, rsa_bits: int = 2048, usages: tuple[str, ...] = BOTH_USAGES,
                    extended: list[x509.ObjectIdentifier] | None = None) -> KeyMaterial:
    """Key material an AP can sign AS4 messages and receipts with (AS4 signs with RSA)."""
    key, certificate = issue_certificate(pki_dir, cn, usages=usages, extended=extended,
                                         key=rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits))
    assert isinstance(key, rsa.RSAPrivateKey)
    return KeyMaterial(key, certificate)
