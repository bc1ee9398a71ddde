"""Throw-away Peppol-like key material for the interop peers: root CA -> AP CA -> one leaf per access point.

Leaves look like Peppol AP certificates (RSA 2048, CN = seat id, clientAuth EKU only, digitalSignature +
keyEncipherment + dataEncipherment) so both sides exercise the same code paths as with real ones.
Every file is PEM and unencrypted, because the as4 peer scripts read them from another interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.keystore import KeyMaterial


@dataclass(frozen=True)
class PeerParty:
    """One access point: its key material and where its PEM files are."""

    seat_id: str
    material: KeyMaterial
    key_pem: Path
    cert_pem: Path

    @property
    def certificate(self) -> x509.Certificate:
        return self.material.certificate


@dataclass(frozen=True)
class PeerPki:
    ca_cert_pem: Path
    ours: PeerParty
    theirs: PeerParty


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Interop Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    now: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, False, True, True, False, False, False, False, False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_party(directory: Path, seat_id: str, key: rsa.RSAPrivateKey, cert: x509.Certificate,
                 chain: tuple[x509.Certificate, ...]) -> PeerParty:
    key_pem = directory / f"{seat_id}.key.pem"
    cert_pem = directory / f"{seat_id}.cert.pem"
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return PeerParty(seat_id, KeyMaterial(key, cert, chain), key_pem, cert_pem)


def make_peer_pki(directory: Path, ours: str = "POP000001", theirs: str = "POP000002") -> PeerPki:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _name("Interop Root CA")
    root = _issue("Interop Root CA", root_key, root_name, root_key, ca=True, now=now)
    ap_ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ap_ca = _issue("Interop ACCESS POINT CA", ap_ca_key, root_name, root_key, ca=True, now=now)
    parties = []
    for seat_id in (ours, theirs):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _issue(seat_id, key, ap_ca.subject, ap_ca_key, ca=False, now=now)
        parties.append(_write_party(directory, seat_id, key, cert, (ap_ca, root)))
    ca_pem = directory / "ca-chain.pem"
    ca_pem.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (ap_ca, root)))
    return PeerPki(ca_pem, parties[0], parties[1])
