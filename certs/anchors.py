"""Peppol trust anchors per environment.

`production` and `test` use the Peppol G3 CAs shipped as package data (taken unchanged from the
OpenPeppol truststores). G2 is retired (2026-04-01) and is not shipped. `local` uses the anchors of
the dev PKI (see certs.devpki), passed in explicitly. Production and test anchors are never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

from cryptography import x509

from certs.names import common_names

Environment = Literal["local", "test", "production"]
ENVIRONMENTS: tuple[str, ...] = ("local", "test", "production")

_FILES = {
    "production": {
        "root": "peppol-root-ca-g3.pem",
        "ap": "peppol-access-point-ca-g3.pem",
        "smp": "peppol-service-metadata-publisher-ca-g3.pem",
    },
    "test": {
        "root": "peppol-root-test-ca-g3.pem",
        "ap": "peppol-access-point-test-ca-g3.pem",
        "smp": "peppol-service-metadata-publisher-test-ca-g3.pem",
    },
}


@dataclass(frozen=True)
class TrustAnchors:
    """The CAs of one environment. Leaves are checked against the issuing CA of their role."""

    environment: str
    roots: tuple[x509.Certificate, ...]
    ap_cas: tuple[x509.Certificate, ...]
    smp_cas: tuple[x509.Certificate, ...]


def _bundled(name: str) -> x509.Certificate:
    data = resources.files("certs").joinpath("data", name).read_bytes()
    return x509.load_pem_x509_certificate(data)


def peppol_anchors(environment: Environment) -> TrustAnchors:
    """The shipped Peppol G3 anchors of `production` or `test`."""
    if environment not in _FILES:
        raise ValueError(f"no shipped Peppol anchors for environment {environment!r} (use production or test)")
    files = _FILES[environment]
    return TrustAnchors(
        environment=environment,
        roots=(_bundled(files["root"]),),
        ap_cas=(_bundled(files["ap"]),),
        smp_cas=(_bundled(files["smp"]),),
    )


def anchors_from_certificates(cas: list[x509.Certificate], environment: str = "custom") -> TrustAnchors:
    """Sort CAs given by an operator (e.g. `--trust` PEM files) into roles by name.

    Self-signed CAs are roots; issuing CAs whose CN names a SERVICE METADATA PUBLISHER (or SMP) CA, as the
    Peppol and dev-PKI SMP CAs do, are SMP CAs; all other issuing CAs are AP CAs.
    """
    roots, ap_cas, smp_cas = [], [], []
    for ca in cas:
        cn = " ".join(common_names(ca.subject)).upper()
        if ca.subject == ca.issuer:
            roots.append(ca)
        elif "SERVICE METADATA PUBLISHER" in cn or "SMP" in cn.split():
            smp_cas.append(ca)
        else:
            ap_cas.append(ca)
    return TrustAnchors(environment, tuple(roots), tuple(ap_cas), tuple(smp_cas))
