"""phase4's SMP paths on loopback, against the test SMP server of tests/smp signed by the dev PKI's SMP key:
its SMP client (sender side) and its receiver check (receiver side, PEPPOL:NOT_SERVICED)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from certs.devpki import DevPki, IssuedLeaf
from certs.keystore import load_pkcs12
from tests.interop.phase4.harness import BIS3_INVOICE, BIS3_PROCESS, Phase4Peer, SendResult
from tests.smp.smpserver import EndpointSpec, SmpServer, service_information, sign

pytestmark = [pytest.mark.interop, pytest.mark.phase4]

SENDER = "0088:9482348239847239874"
REGISTERED = "0002:FR23342"
UNREGISTERED = "0002:NOT-REGISTERED-HERE"
PARTICIPANT_SCHEME = "iso6523-actorid-upis"
DOCTYPE = ("busdox-docid-qns", BIS3_INVOICE)
PROCESS = ("cenbii-procid-ubl", BIS3_PROCESS)


@pytest.fixture
def smp(phase4_pki: DevPki, phase4_peer: Phase4Peer, phase4_peer_leaf: IssuedLeaf) -> Iterator[SmpServer]:
    """An SMP where REGISTERED is served by the phase4 peer's /as4 for BIS invoices; nobody else is registered."""
    signer = load_pkcs12(phase4_pki.smp_p12, phase4_pki.password)
    endpoint = EndpointSpec(process=PROCESS, url=phase4_peer.as4_url, certificate=phase4_peer_leaf.certificate)
    body = sign(service_information((PARTICIPANT_SCHEME, REGISTERED), DOCTYPE, [endpoint]), signer)
    with SmpServer() as server:
        server.serve((PARTICIPANT_SCHEME, REGISTERED), DOCTYPE, body)
        yield server


def _send(peer: Phase4Peer, receiver: str, invoice: Path, **route: str) -> SendResult:
    return peer.send(sender=SENDER, receiver=receiver, document_type=BIS3_INVOICE, process=BIS3_PROCESS,
                     country_c1="GB", payload_path=invoice, **route)


def test_sender_discovers_receiver_through_smp(peer_receiver_defaults: Phase4Peer, smp: SmpServer,
                                               bis_invoice: Path) -> None:
    sent = _send(peer_receiver_defaults, REGISTERED, bis_invoice, smp_url=smp.base)
    # phase4's SMP client verified the SMP signature against the dev SMP CA, then sent to the listed endpoint.
    assert sent.accepted, sent
    assert any("/services/" in path for path in smp.requests)
    assert [e["messageId"] for e in peer_receiver_defaults.inbox()].count(sent.message_id) == 1


def test_sender_refuses_smp_signed_by_untrusted_key(peer_receiver_defaults: Phase4Peer, phase4_pki: DevPki,
                                                    phase4_peer_leaf: IssuedLeaf, bis_invoice: Path) -> None:
    # Signed with the peer's AP key: a valid certificate, but not from the SMP CA the peer's SMP client trusts.
    signer = load_pkcs12(phase4_peer_leaf.p12, phase4_pki.password)
    endpoint = EndpointSpec(process=PROCESS, url=peer_receiver_defaults.as4_url,
                            certificate=phase4_peer_leaf.certificate)
    body = sign(service_information((PARTICIPANT_SCHEME, REGISTERED), DOCTYPE, [endpoint]), signer)
    with SmpServer() as server:
        server.serve((PARTICIPANT_SCHEME, REGISTERED), DOCTYPE, body)
        sent = _send(peer_receiver_defaults, REGISTERED, bis_invoice, smp_url=server.base)
    # phase4 classifies a failed SMP lookup as TRANSPORT_ERROR (retryable) and never contacts the endpoint.
    assert sent.result == "TRANSPORT_ERROR", sent
    assert not sent.signal_received
    assert "Error in validating signature returned from SMP server" in (sent.exception or "")


def test_receiver_check_accepts_registered_and_rejects_unknown(peer_receiver_defaults: Phase4Peer, smp: SmpServer,
                                                               phase4_peer_leaf: IssuedLeaf,
                                                               bis_invoice: Path) -> None:
    peer = peer_receiver_defaults
    assert peer.configure_receiver(smp_url=smp.base)["receiverCheck"] is True
    direct = {"endpoint_url": peer.as4_url, "receiver_cert_pem": phase4_peer_leaf.cert_pem.read_text()}

    served = _send(peer, REGISTERED, bis_invoice, **direct)
    assert served.accepted, served

    unknown = _send(peer, UNREGISTERED, bis_invoice, **direct)
    assert unknown.result == "AS4_ERROR_MESSAGE_RECEIVED", unknown
    [error] = unknown.ebms_errors
    assert error["code"] == "EBMS:0004"
    assert error["detail"] == "PEPPOL:NOT_SERVICED"
    assert unknown.message_id not in [e["messageId"] for e in peer.inbox()]


def test_receiver_check_rejects_endpoint_with_other_certificate(peer_receiver_defaults: Phase4Peer,
                                                                phase4_pki: DevPki, phase4_peer_leaf: IssuedLeaf,
                                                                bis_invoice: Path) -> None:
    peer = peer_receiver_defaults
    other: x509.Certificate = x509.load_pem_x509_certificate(phase4_pki.ap_cert.read_bytes())  # the gateway's AP
    signer = load_pkcs12(phase4_pki.smp_p12, phase4_pki.password)
    endpoint = EndpointSpec(process=PROCESS, url=peer.as4_url, certificate=other)
    body = sign(service_information((PARTICIPANT_SCHEME, REGISTERED), DOCTYPE, [endpoint]), signer)
    with SmpServer() as server:
        server.serve((PARTICIPANT_SCHEME, REGISTERED), DOCTYPE, body)
        peer.configure_receiver(smp_url=server.base)
        sent = _send(peer, REGISTERED, bis_invoice, endpoint_url=peer.as4_url,
                     receiver_cert_pem=phase4_peer_leaf.cert_pem.read_text())
    assert sent.result == "AS4_ERROR_MESSAGE_RECEIVED", sent
    [error] = sent.ebms_errors
    assert error["code"] == "EBMS:0004"
    assert "could not be verified" in error["detail"]
