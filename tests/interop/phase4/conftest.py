"""Session fixtures for the phase4 interop suite: a test PKI and one running phase4 peer JVM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from certs.devpki import DevPki, IssuedLeaf, init_pki, issue_leaf
from tests.interop.phase4.harness import PeerIdentity, Phase4Peer

# Our gateway's AP identity is the dev PKI's own AP leaf (ap.p12); the phase4 peer gets a second AP leaf.
GATEWAY_SEAT_ID = "POP000001"
PEER_SEAT_ID = "POP000002"


@pytest.fixture(scope="session")
def phase4_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_pki(tmp_path_factory.mktemp("phase4-pki") / "pki", ap_seat_id=GATEWAY_SEAT_ID)


@pytest.fixture(scope="session")
def phase4_peer_leaf(phase4_pki: DevPki) -> IssuedLeaf:
    return issue_leaf(phase4_pki, role="ap", cn=PEER_SEAT_ID)


@pytest.fixture(scope="session")
def phase4_peer(
    phase4_pki: DevPki, phase4_peer_leaf: IssuedLeaf, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Phase4Peer]:
    identity = PeerIdentity(
        keystore=phase4_peer_leaf.p12,
        ap_cas=(phase4_pki.ap_ca,),
        roots=(phase4_pki.root_ca,),
        smp_ca=phase4_pki.smp_ca,
        password=phase4_pki.password,
    )
    peer = Phase4Peer.start(tmp_path_factory.mktemp("phase4-peer"), identity)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def peer_receiver_defaults(phase4_peer: Phase4Peer) -> Iterator[Phase4Peer]:
    """The shared peer with its receiver in the default state before and after the test."""
    phase4_peer.configure_receiver()
    try:
        yield phase4_peer
    finally:
        phase4_peer.configure_receiver()


@pytest.fixture(scope="session")
def bis_invoice(vectors: Path) -> Path:
    return vectors / "bis" / "base-example.xml"
