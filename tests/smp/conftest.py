"""Fixtures for discovery tests: the generated test PKI, a certificate validator over it, identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from certs.anchors import TrustAnchors
from certs.keystore import KeyMaterial, load_certificates, load_pkcs12

# The reference date of every "valid now / expired" verdict in vectors/smp/INDEX.md.
VECTOR_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SMP_PURPOSE = "smp-signing"
AP_PURPOSE = "ap-encryption"


@dataclass(frozen=True)
class Ident:
    """Stand-in for smp.identifiers ids in tests: the client only needs scheme and value."""

    scheme: str
    value: str

    @property
    def uri(self) -> str:
        return f"{self.scheme}::{self.value}"


PARTICIPANT = Ident("iso6523-actorid-upis", "9915:SmpDigestTest")
BIS3_INVOICE = Ident(
    "busdox-docid-qns",
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##urn:cen.eu:en16931:2017#compliant"
    "#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1",
)
BIS3_PROCESS = Ident("cenbii-procid-ubl", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str | None
    detail: str
    subject: str


class ChainValidator:
    """Test validator with the certs.validation shape: the issuer must be one of the CAs of the
    purpose's role, its signature must verify, and leaf and CA must be within validity at `at`."""

    def __init__(self, anchors: TrustAnchors) -> None:
        self.anchors = anchors
        self.calls: list[tuple[str, str]] = []

    def validate(self, cert: x509.Certificate, purpose: str, at: datetime | None = None) -> Verdict:
        at = at or datetime.now(UTC)
        subject = cert.subject.rfc4514_string()
        self.calls.append((subject, purpose))
        cas = self.anchors.smp_cas if purpose == SMP_PURPOSE else self.anchors.ap_cas
        issuers = [ca for ca in cas if ca.subject == cert.issuer]
        if not issuers:
            return Verdict(False, "unsupported-issuer", f"issuer {cert.issuer.rfc4514_string()} not trusted", subject)
        try:
            cert.verify_directly_issued_by(issuers[0])
        except (InvalidSignature, ValueError, TypeError):
            return Verdict(False, "bad-signature", "not signed by the trusted CA key", subject)
        for c in (cert, issuers[0]):
            if at < c.not_valid_before_utc:
                return Verdict(False, "not-yet-valid", f"{c.subject.rfc4514_string()} not valid before "
                                                       f"{c.not_valid_before_utc:%Y-%m-%d}", subject)
            if at > c.not_valid_after_utc:
                return Verdict(False, "expired", f"{c.subject.rfc4514_string()} expired "
                                                 f"{c.not_valid_after_utc:%Y-%m-%d}", subject)
        return Verdict(True, None, "issued by a trusted CA, within validity (revocation not checked)", subject)


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
def validator(anchors: TrustAnchors) -> ChainValidator:
    return ChainValidator(anchors)


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
