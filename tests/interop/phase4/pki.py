"""A throw-away test PKI for the phase4 peer: root CA -> AP CA -> AP leaves (seat-ID CNs), root CA -> SMP CA.

Stand-in until ``certs.devpki`` is on main; it writes the same file names (root-ca.pem, ap-ca.pem, smp-ca.pem,
``<cn>.p12`` with password ``peppol``) so the fixtures switch by changing one import.
phase4 requires cA=true on CAs, leaves issued directly by the AP CA, and a seat-ID-shaped CN (it becomes the PartyId).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSWORD = "peppol"


@dataclass(frozen=True)
class InteropPki:
    directory: Path
    root_ca: Path
    ap_ca: Path
    smp_ca: Path


@dataclass(frozen=True)
class Leaf:
    p12: Path
    cert_pem: Path
    certificate: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "peppol-ap interop TEST ONLY"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _sign(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey,
          ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    usage = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                           "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
    usage.update(key_cert_sign=ca, crl_sign=ca, digital_signature=not ca, key_encipherment=not ca)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_pki(directory: Path) -> InteropPki:
    directory.mkdir(parents=True, exist_ok=True)
    root_key, ap_key, smp_key = _key(), _key(), _key()
    root = _sign("TEST ONLY PEPPOL ROOT CA", root_key, _name("TEST ONLY PEPPOL ROOT CA"), root_key, ca=True)
    ap = _sign("TEST ONLY PEPPOL ACCESS POINT CA", ap_key, root.subject, root_key, ca=True)
    smp = _sign("TEST ONLY PEPPOL SMP CA", smp_key, root.subject, root_key, ca=True)
    pki = InteropPki(directory, directory / "root-ca.pem", directory / "ap-ca.pem", directory / "smp-ca.pem")
    for path, cert in ((pki.root_ca, root), (pki.ap_ca, ap), (pki.smp_ca, smp)):
        path.write_bytes(_pem(cert))
    _write_key(directory / "ap-ca.key.pem", ap_key)
    _write_key(directory / "smp-ca.key.pem", smp_key)
    return pki


def issue_leaf(pki: InteropPki, role: str, cn: str) -> Leaf:
    """An AP (or SMP) leaf with key and chain in ``<cn>.p12`` (password ``peppol``, alias = cn)."""
    ca_cert = x509.load_pem_x509_certificate((pki.ap_ca if role == "ap" else pki.smp_ca).read_bytes())
    ca_key = serialization.load_pem_private_key((pki.directory / f"{role}-ca.key.pem").read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = _key()
    cert = _sign(cn, key, ca_cert.subject, ca_key, ca=False)
    root = x509.load_pem_x509_certificate(pki.root_ca.read_bytes())
    p12 = pki.directory / f"{cn}.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        cn.encode(), key, cert, [ca_cert, root], serialization.BestAvailableEncryption(PASSWORD.encode())))
    cert_pem = pki.directory / f"{cn}.cert.pem"
    cert_pem.write_bytes(_pem(cert))
    return Leaf(p12, cert_pem, cert)
