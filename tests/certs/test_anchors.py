"""The shipped Peppol G3 CAs: pinned fingerprints (values from vectors/pki/INDEX.md), no G2."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certs.anchors import peppol_anchors

PINS = {
    "peppol-root-ca-g3.pem":
        "B6:07:5B:9F:86:55:E7:56:77:7F:18:2D:14:07:C0:04:94:42:D3:A2:F5:7D:FF:97:81:52:38:28:F3:31:F2:11",
    "peppol-access-point-ca-g3.pem":
        "B6:5E:37:5A:58:26:AD:A1:65:17:B2:AA:8A:88:1B:6F:CA:FF:5E:48:E7:55:9B:9E:96:BB:A5:C6:49:21:F9:00",
    "peppol-service-metadata-publisher-ca-g3.pem":
        "D9:E1:74:67:C6:9E:51:FC:4F:5C:52:63:54:2F:C6:8D:2A:BB:A5:DF:AA:E6:2E:87:FB:D6:82:9F:1D:E6:21:C4",
    "peppol-root-test-ca-g3.pem":
        "8B:4E:0E:5D:C7:C8:20:8C:BA:88:ED:EB:FA:D3:1E:06:47:40:D8:96:AB:6E:18:DE:0B:03:38:6F:D2:4B:E7:34",
    "peppol-access-point-test-ca-g3.pem":
        "D2:44:5A:0F:11:5E:E6:4C:C1:41:A8:49:FE:14:29:27:FE:57:01:B7:D9:B5:8D:3E:6F:53:99:31:62:11:5C:C0",
    "peppol-service-metadata-publisher-test-ca-g3.pem":
        "EB:78:DA:BB:62:2B:BC:70:15:92:F0:85:BC:27:AB:81:7F:E1:C0:D4:75:3A:E8:29:68:2E:81:27:B3:B0:0C:E7",
}


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _shipped() -> dict[str, bytes]:
    folder = resources.files("certs").joinpath("data")
    return {item.name: item.read_bytes() for item in folder.iterdir() if item.name.endswith(".pem")}


def test_exactly_the_six_g3_cas_are_shipped() -> None:
    assert sorted(_shipped()) == sorted(PINS)
    assert not [name for name in _shipped() if "g2" in name.lower()]


@pytest.mark.parametrize("name", sorted(PINS))
def test_fingerprint_pin(name: str, vectors: Path) -> None:
    certs = x509.load_pem_x509_certificates(_shipped()[name])
    assert len(certs) == 1
    assert _fingerprint(certs[0]) == PINS[name]
    # Same certificate as the staging copy taken from the OpenPeppol truststores.
    assert certs[0] == x509.load_pem_x509_certificate((vectors / "pki/pem" / name).read_bytes())
    assert "G3" in certs[0].subject.rfc4514_string()


@pytest.mark.parametrize(("environment", "marker"), [("production", "CA - G3"), ("test", "TEST CA - G3")])
def test_peppol_anchors_per_environment(environment: str, marker: str) -> None:
    anchors = peppol_anchors(environment)  # type: ignore[arg-type]
    assert anchors.environment == environment
    for group in (anchors.roots, anchors.ap_cas, anchors.smp_cas):
        assert len(group) == 1 and marker in group[0].subject.rfc4514_string()
        assert _fingerprint(group[0]) in PINS.values()
    assert "ACCESS POINT" in anchors.ap_cas[0].subject.rfc4514_string()
    assert "SERVICE METADATA PUBLISHER" in anchors.smp_cas[0].subject.rfc4514_string()
    assert ("TEST" in anchors.roots[0].subject.rfc4514_string()) is (environment == "test")


def test_no_shipped_anchors_for_local() -> None:
    with pytest.raises(ValueError, match="production or test"):
        peppol_anchors("local")
