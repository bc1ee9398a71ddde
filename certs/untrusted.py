"""Certificates read from bytes someone else sent (BinarySecurityTokens of AS4 messages, SMP answers).

cryptography parses a certificate's names, extensions and public key only when they are first read, so damaged
DER can load and then fail wherever a field happens to be used, with one of several exception types: ValueError,
TypeError (a name attribute of an ASN.1 type its OID may not have), InvalidVersion (at load), DuplicateExtension,
UnsupportedGeneralNameType, UnsupportedAlgorithm. Java's CertificateFactory, which phase4/WSS4J use, parses all of
it at once and fails with one CertificateException; `load_der` does the same, so a certificate it returns can be
read anywhere without surprises, and everything else is a `MalformedCertificate` that says which part is broken.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

# What cryptography raises for unreadable certificate content; only ever caught around a single field read.
MALFORMED: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
)

_PARTS: tuple[tuple[str, Callable[[x509.Certificate], object]], ...] = (
    ("subject name", lambda c: c.subject.rfc4514_string()),
    ("issuer name", lambda c: c.issuer.rfc4514_string()),
    ("validity", lambda c: (c.not_valid_before_utc, c.not_valid_after_utc)),
    ("extensions", lambda c: c.extensions),
    ("public key", lambda c: c.public_key()),
)


class MalformedCertificate(ValueError):
    """The bytes hold no certificate we can read completely; the text names the broken part."""


def load_der(der: bytes) -> x509.Certificate:
    """The certificate in `der`, with every part the gateway reads already parsed; else MalformedCertificate."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except MALFORMED as exc:
        raise MalformedCertificate(f"not a DER X.509 certificate ({_why(exc)})") from None
    check_readable(certificate)
    return certificate


def check_readable(certificate: x509.Certificate) -> None:
    """Raise MalformedCertificate unless subject, issuer, validity, extensions and public key can all be read.

    An unsupported key algorithm counts as unreadable: the gateway could not use that key for anything.
    """
    for part, read in _PARTS:
        try:
            read(certificate)
        except MALFORMED as exc:
            raise MalformedCertificate(f"its {part} cannot be read ({_why(exc)})") from None


def _why(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
