"""Fixtures for discovery tests: the generated test PKI, the certificate validator over it, identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certs.anchors import TrustAnchors
from certs.keystore import KeyMaterial, load_certificates, load_pkcs12
from certs.validation import CertificateValidator
from smp.identifiers import ParticipantId

# The reference date of every "valid now / expired" verdict in vectors/smp/INDEX.md.
VECTOR_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ident:
    """An identifier exactly as a vector states it (any ICD, no syntax rules): discovery code only needs
    scheme and value, so vectors with retired ICDs (9908, 9933, 9901) can be replayed."""

    scheme: str
    value: str

    @property
    def uri(self) -> str:
        return f"{self.scheme}::{self.value}"


PARTICIPANT = ParticipantId.parse("iso6523-actorid-upis::9915:SmpDigestTest")


@pytest.fixture(scope="session")
def smp_vectors(vectors: Path) -> Path:
    return vectors / "smp"


@pytest.fixture(scope="session")
def pki(smp_vectors: Path) -> Path:
    return smp_vectors / "generated" / "pki"


@pytest.fixture(scope="session")
def anchors(pki: Path) -> TrustAnchors:
    return TrustAnchors(
        environment="local",
        roots=tuple(load_certificates(pki / "test-root-ca.cert.pem")),
        ap_cas=tuple(load_certificates(pki / "test-ap-ca.cert.pem")),
        smp_cas=tuple(load_certificates(pki / "test-smp-ca.cert.pem")),
    )


@pytest.fixture
def validator(anchors: TrustAnchors) -> CertificateValidator:
    """The real validator over the generated test PKI, without revocation (no CRL/OCSP in those certificates)."""
    return CertificateValidator(anchors)


@pytest.fixture(scope="session")
def smp_a(pki: Path) -> KeyMaterial:
    return load_pkcs12(pki / "smp-a.p12", "test")


@pytest.fixture(scope="session")
def smp_b(pki: Path) -> KeyMaterial:
    return load_pkcs12(pki / "smp-b.p12", "test")


@pytest.fixture(scope="session")
def smp_rogue(pki: Path) -> KeyMaterial:
    return load_pkcs12(pki / "smp-rogue.p12", "test")


@pytest.fixture(scope="session")
def ap_c(pki: Path) -> KeyMaterial:
    return load_pkcs12(pki / "ap-c.p12", "test")


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A NAPTR DNS server process for local.peppol.test and two HTTP SMPs (see smpserver.World)."""
    from tests.smp.smpserver import world as make_world

    with make_world(tmp_path_factory.mktemp("sml")) as w:
        yield w
