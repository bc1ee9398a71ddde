"""The peer trusts exactly the dev PKI's AP CA: certificates of another PKI are refused in both directions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certs.devpki import DevPki, IssuedLeaf, init_pki, issue_leaf
from tests.interop.phase4.harness import BIS3_INVOICE, BIS3_PROCESS, PeerIdentity, Phase4Peer, SendResult

pytestmark = [pytest.mark.interop, pytest.mark.phase4]

FOREIGN_SEAT_ID = "POP000003"


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_pki(tmp_path_factory.mktemp("foreign-pki") / "pki", ap_seat_id="POP000009")


@pytest.fixture(scope="module")
def foreign_leaf(foreign_pki: DevPki) -> IssuedLeaf:
    return issue_leaf(foreign_pki, role="ap", cn=FOREIGN_SEAT_ID)


@pytest.fixture(scope="module")
def foreign_peer(foreign_pki: DevPki, foreign_leaf: IssuedLeaf, phase4_pki: DevPki,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phase4Peer]:
    """A second phase4 JVM whose AP certificate comes from an unrelated PKI (same names, different keys).

    It trusts both PKIs, so it is willing to talk to the main peer; the main peer trusts only the dev PKI.
    """
    identity = PeerIdentity(keystore=foreign_leaf.p12, ap_cas=(foreign_pki.ap_ca, phase4_pki.ap_ca),
                            roots=(foreign_pki.root_ca, phase4_pki.root_ca), password=foreign_pki.password)
    peer = Phase4Peer.start(tmp_path_factory.mktemp("foreign-peer"), identity)
    try:
        yield peer
    finally:
        peer.stop()


def _send(sender: Phase4Peer, to: Phase4Peer, to_cert: Path, invoice: Path) -> SendResult:
    return sender.send(sender="0088:9482348239847239874", receiver="0002:FR23342", document_type=BIS3_INVOICE,
                       process=BIS3_PROCESS, country_c1="GB", payload_path=invoice, endpoint_url=to.as4_url,
                       receiver_cert_pem=to_cert.read_text())


def test_receiver_rejects_sender_from_another_pki(peer_receiver_defaults: Phase4Peer, phase4_peer_leaf: IssuedLeaf,
                                                  foreign_peer: Phase4Peer, bis_invoice: Path) -> None:
    refused = _send(foreign_peer, peer_receiver_defaults, phase4_peer_leaf.cert_pem, bis_invoice)
    assert refused.result == "AS4_ERROR_MESSAGE_RECEIVED", refused
    # WSS4J's chain check against the peer's trust store fails; phase4 reports every WSS4J failure as EBMS:0102.
    [error] = refused.ebms_errors
    assert error["code"] == "EBMS:0102"
    assert "certificate path validation" in error["detail"]
    assert refused.message_id not in [e["messageId"] for e in peer_receiver_defaults.inbox()]


def test_sender_checks_receiver_certificate_by_issuer_name_only(peer_receiver_defaults: Phase4Peer,
                                                                foreign_peer: Phase4Peer, foreign_leaf: IssuedLeaf,
                                                                bis_invoice: Path) -> None:
    """phase4 quirk, pinned: its sender-side TrustedCAChecker compares only the receiver certificate's issuer DN.

    Both dev PKIs name their AP CA alike, so phase4 encrypts for the foreign certificate and the foreign peer
    stores the document; only the foreign receipt is then refused, because its signature does not chain to
    the trusted AP CA. Our gateway must check the receiver certificate's signature, not just the issuer name.
    """
    sent = _send(peer_receiver_defaults, foreign_peer, foreign_leaf.cert_pem, bis_invoice)
    assert sent.result == "TRANSPORT_ERROR_NO_RETRY", sent
    assert not sent.signal_received
    assert "certificate path validation" in (sent.exception or "")
    assert sent.message_id in [e["messageId"] for e in foreign_peer.inbox()]


def test_sender_refuses_receiver_certificate_with_unknown_issuer(peer_receiver_defaults: Phase4Peer,
                                                                 bis_invoice: Path, tmp_path: Path) -> None:
    # A self-signed seat-ID certificate: its issuer DN is none of the trusted AP CAs, so phase4 must not send.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "POP000004")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256())
    )
    pem = tmp_path / "self-signed.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    sent = _send(peer_receiver_defaults, peer_receiver_defaults, pem, bis_invoice)

    assert sent.result == "TRANSPORT_ERROR_NO_RETRY", sent
    assert sent.http_status is None and not sent.signal_received, "phase4 contacted the endpoint anyway"
    assert "receiver AP certificate is not valid" in (sent.exception or "")
    assert "unsupported certificate issuer" in (sent.exception or "")
