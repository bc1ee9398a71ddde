"""Our own key material: a private key, its certificate and the chain above it.

Loaded from PKCS#12 (with password) or from PEM files. Errors never contain the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.names import common_name


class KeystoreError(ValueError):
    """Key material cannot be used; the message says why and never contains a secret."""


@dataclass(frozen=True)
class KeyMaterial:
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = field(default=())

    @property
    def subject_cn(self) -> str:
        return common_name(self.certificate.subject)

    def check_usable(self, at: datetime | None = None) -> None:
        """Raise KeystoreError when the key does not match the certificate or the certificate is expired."""
        if self.private_key.public_key().public_numbers() != self.certificate.public_key().public_numbers():
            raise KeystoreError("the private key does not match the certificate")
        now = at or datetime.now(UTC)
        if now > self.certificate.not_valid_after_utc:
            raise KeystoreError(
                f"certificate {self.certificate.subject.rfc4514_string()} expired on "
                f"{self.certificate.not_valid_after_utc:%Y-%m-%d}"
            )
        if now < self.certificate.not_valid_before_utc:
            raise KeystoreError(
                f"certificate {self.certificate.subject.rfc4514_string()} is not valid before "
                f"{self.certificate.not_valid_before_utc:%Y-%m-%d}"
            )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise KeystoreError(f"{what} file cannot be read: {path}: {exc.strerror}") from None


def _rsa_only(key: object) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeystoreError("the private key is not an RSA key (Peppol certificates are RSA)")
    return key


def load_pkcs12(path: str | Path, password: str | bytes | None) -> KeyMaterial:
    data = _read(Path(path), "PKCS#12")
    secret = password.encode() if isinstance(password, str) else password
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, secret or None)
    except ValueError:
        raise KeystoreError(f"cannot open PKCS#12 {path}: wrong password or not a PKCS#12 file") from None
    if key is None or cert is None:
        raise KeystoreError(f"PKCS#12 {path} holds no private key with a certificate")
    return KeyMaterial(_rsa_only(key), cert, tuple(extra or ()))


def load_pem(
    key_path: str | Path,
    cert_path: str | Path,
    chain_path: str | Path | None = None,
    password: str | bytes | None = None,
) -> KeyMaterial:
    secret = password.encode() if isinstance(password, str) else password
    key_data = _read(Path(key_path), "private key")
    try:
        key = serialization.load_pem_private_key(key_data, secret or None)
    except (ValueError, TypeError):
        raise KeystoreError(f"cannot read private key {key_path}: wrong password or not a PEM key") from None
    certs = load_certificates(cert_path)
    chain = tuple(load_certificates(chain_path)) if chain_path else ()
    return KeyMaterial(_rsa_only(key), certs[0], tuple(certs[1:]) + chain)


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """All certificates of a PEM file (or the one certificate of a DER file)."""
    data = _read(Path(path), "certificate")
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise KeystoreError(f"{path} holds no readable X.509 certificate") from None
    if not certs:
        raise KeystoreError(f"{path} holds no certificate")
    return certs
