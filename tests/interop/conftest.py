"""Fixtures for the interop tests: the as4 peer venv, key material for both access points, a running as4 receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.as4peer.venv import ensure_as4_python
from tests.interop.keys import PeerPki, make_peer_pki
from tests.interop.peers import As4Receiver, Parties, start_receiver

NOT_SERVICED = "0088:notserviced"


@pytest.fixture(scope="session")
def as4_python() -> Path:
    """The python of the as4 peer venv (created from PyPI on first use)."""
    return ensure_as4_python()


@pytest.fixture(scope="session")
def peer_pki(tmp_path_factory: pytest.TempPathFactory) -> PeerPki:
    """Our AP (POP000001) and the as4 peer's AP (POP000002), both under one throw-away AP CA."""
    return make_peer_pki(tmp_path_factory.mktemp("peer-pki"))


@pytest.fixture
def to_us(peer_pki: PeerPki) -> Parties:
    """Addressing of a message the as4 peer sends to our access point."""
    return Parties(sender_ap=peer_pki.theirs, receiver_ap=peer_pki.ours)


@pytest.fixture
def to_peer(peer_pki: PeerPki) -> Parties:
    """Addressing of a message we send to the as4 peer."""
    return Parties(sender_ap=peer_pki.ours, receiver_ap=peer_pki.theirs)


@pytest.fixture
def invoice(vectors: Path) -> Path:
    """A Peppol BIS Billing 3.0 invoice to carry."""
    return vectors / "bis" / "base-example.xml"


@pytest.fixture
def as4_receiver(as4_python: Path, peer_pki: PeerPki, tmp_path: Path) -> Iterator[As4Receiver]:
    """The as4 receiver as POP000002, pinning our AP's certificate (POP000001) as the only trusted signer.

    It refuses participant 0088:notserviced with PEPPOL:NOT_SERVICED, to exercise the error path.
    """
    receiver = start_receiver(
        as4_python, peer_pki.theirs, [peer_pki.ours], tmp_path / "as4-receiver", not_serviced=(NOT_SERVICED,)
    )
    try:
        yield receiver
    finally:
        receiver.stop()
