"""Key material for the interop peers, from our dev PKI: one AP CA, our AP (POP000001) and the peer's AP (POP000002).

Both leaves are Peppol-shaped (certs.devpki), so our certificate validator accepts the peer as a `local` AP and
the as4 peer scripts read the same PEM files (unencrypted key; leaf first in the certificate file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from certs.devpki import DevPki, init_pki, issue_leaf
from certs.keystore import KeyMaterial, load_pem
from certs.validation import CertificateValidator

OUR_SEAT = "POP000001"
PEER_SEAT = "POP000002"


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
    pki: DevPki
    ours: PeerParty
    theirs: PeerParty

    def validator(self) -> CertificateValidator:
        """Trusts exactly this dev PKI's AP CA, as a `local` gateway would; revocation off (no CRL here)."""
        return CertificateValidator(self.pki.anchors())


def make_peer_pki(directory: Path) -> PeerPki:
    pki = init_pki(directory / "dev", ap_seat_id=OUR_SEAT)
    ours = PeerParty(OUR_SEAT, load_pem(pki.ap_key, pki.ap_cert), pki.ap_key, pki.ap_cert)
    leaf = issue_leaf(pki, cn=PEER_SEAT)
    theirs = PeerParty(PEER_SEAT, load_pem(leaf.key_pem, leaf.cert_pem), leaf.key_pem, leaf.cert_pem)
    return PeerPki(pki, ours, theirs)
