"""Hostile URLs the gateway fetches besides webhooks (issue 13): SMP addresses from the SML and SMP redirects, CRL and
OCSP URLs taken from certificates, and the AS4 endpoint an SMP names. In the test environment (as in production)
none of them may lead to loopback, private or link-local addresses.

Everything runs against real servers on 127.0.0.1 (a NAPTR DNS server process, HTTP SMPs, a CRL/OCSP server, an
AS4 stand-in). To show that valid traffic still flows, the operator's allow-list names 127.0.0.1/32, the way an
operator who delivers into their own network would; everything else internal stays refused.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from accesspoint.adapters.discovery import build_discovery
from accesspoint.adapters.transport import Transport, TransportError
from accesspoint.config import Config, egress_policy, load_config, revocation_checker
from accesspoint.flows.sending import classify_transport
from certs.devpki import DevPki, issue_leaf
from certs.keystore import KeyMaterial
from certs.validation import CertificateValidator
from smp.client import Discovery, service_metadata_url
from smp.errors import DiscoveryUntrusted
from smp.identifiers import BIS3_INVOICE, BIS3_PROCESS, ParticipantId
from tests.certs.conftest import dev_pki  # noqa: F401 (fixture)
from tests.certs.revocation_server import RevocationServer, make_crl
from tests.smp.conftest import anchors, ap_c, pki, smp_a, smp_b, smp_vectors, validator  # noqa: F401 (fixtures)
from tests.smp.conftest import world as world
from tests.smp.smpserver import ZONE, EndpointSpec, World, redirect, service_information, sign

pytestmark = pytest.mark.integration

# the validity window of the generated SMP test PKI (vectors/smp/INDEX.md)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PROCESS = (BIS3_PROCESS.scheme, BIS3_PROCESS.value)
DOCTYPE = (BIS3_INVOICE.scheme, BIS3_INVOICE.value)
SMP_B_UID = "C=XX, O=Example SMP B, OU=PEPPOL TEST SMP, CN=PXX000002"


def settings_in_test(vectors: Path, allow: str = "") -> Config:
    """The test environment's settings (the keystore file is only named, never opened here)."""
    env = {"PEPPOL_AP_ENVIRONMENT": "test",
           "PEPPOL_AP_KEYSTORE__PKCS12": str(vectors / "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12")}
    if allow:
        env["PEPPOL_AP_EGRESS__ALLOW"] = allow
    return load_config(None, env)


def discovery(cfg: Config, world: World, validator: CertificateValidator) -> Discovery:  # noqa: F811
    """Discovery as the gateway wires it, with the test world's DNS server as the SML."""
    return build_discovery(cfg, validator, zone=ZONE, dns_servers=[f"127.0.0.1:{world.dns_port}"])


def pid(value: str) -> ParticipantId:
    return ParticipantId.parse(f"iso6523-actorid-upis::{value}")


# --- SMPs ---------------------------------------------------------------------------------------------------

def test_an_sml_answer_naming_an_internal_smp_is_not_contacted(
        vectors: Path, world: World, validator: CertificateValidator,  # noqa: F811
        smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:  # noqa: F811
    participant = pid("9915:hostile-smp")
    body = sign(service_information((participant.scheme, participant.value), DOCTYPE,
                                    [EndpointSpec(PROCESS, "https://ap.example.test/as4", ap_c.certificate)]), smp_a)
    world.smp_a.serve((participant.scheme, participant.value), DOCTYPE, body)
    world.register(participant, world.smp_a.base)
    before = len(world.smp_a.requests)
    # without an allow-list the loopback SMP itself is refused
    with pytest.raises(DiscoveryUntrusted, match=r"is not contacted: 127\.0\.0\.1 is not a public address: loopback"):
        discovery(settings_in_test(vectors), world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS,
                                                                       at=NOW)
    allowed = settings_in_test(vectors, "127.0.0.1/32")
    for smp_uri, reason in [("http://169.254.169.254", "cloud metadata service"),
                            ("http://10.0.0.1", "private"),
                            (f"http://localhost:{world.smp_a.base.rsplit(':', 1)[1]}", "loopback name"),
                            (f"http://[::ffff:127.0.0.1]:{world.smp_a.base.rsplit(':', 1)[1]}", "loopback")]:
        world.register(participant, smp_uri)
        with pytest.raises(DiscoveryUntrusted, match="is not contacted") as refused:
            discovery(allowed, world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS, at=NOW)
        assert reason in refused.value.message
    assert len(world.smp_a.requests) == before
    # the allowed SMP answers as always
    world.register(participant, world.smp_a.base)
    result = discovery(allowed, world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS, at=NOW)
    assert result.endpoint_url == "https://ap.example.test/as4" and len(world.smp_a.requests) == before + 1


def test_an_smp_redirect_to_an_internal_address_is_not_followed(
        vectors: Path, world: World, validator: CertificateValidator,  # noqa: F811
        smp_a: KeyMaterial, smp_b: KeyMaterial, ap_c: KeyMaterial) -> None:  # noqa: F811
    participant = pid("9915:hostile-redirect")
    as_tuple = (participant.scheme, participant.value)
    world.register(participant, world.smp_a.base)
    target = sign(service_information(as_tuple, DOCTYPE,
                                      [EndpointSpec(PROCESS, "https://ap.example.test/as4", ap_c.certificate)]), smp_b)
    world.smp_b.serve(as_tuple, DOCTYPE, target)
    port = world.smp_b.base.rsplit(":", 1)[1]
    lookup = discovery(settings_in_test(vectors, "127.0.0.1/32"), world, validator)
    for base, reason in [("http://169.254.169.254", "link-local (the cloud metadata service)"),
                         ("http://192.168.1.20", "private"),
                         (f"http://localhost:{port}", "loopback name"),
                         (f"http://127.0.0.2:{port}", "loopback"),
                         (f"http://2130706433:{port}", "non-standard spelling"),
                         (f"http://ops@127.0.0.1:{port}", "user information")]:
        href = service_metadata_url(base, participant, BIS3_INVOICE)
        world.smp_a.serve(as_tuple, DOCTYPE, sign(redirect(href, SMP_B_UID), smp_a))
        with pytest.raises(DiscoveryUntrusted, match="is not contacted") as refused:
            lookup.find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS, at=NOW, use_cache=False)
        assert reason in refused.value.message, refused.value.message
    assert world.smp_b.requests == []
    # a redirect to the allowed address is followed
    world.smp_a.serve(as_tuple, DOCTYPE,
                      sign(redirect(service_metadata_url(world.smp_b.base, participant, BIS3_INVOICE), SMP_B_UID),
                           smp_a))
    result = lookup.find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS, at=NOW, use_cache=False)
    assert result.metadata.redirected_from and len(world.smp_b.requests) == 1


# --- CRL and OCSP ---------------------------------------------------------------------------------------------

def test_crl_and_ocsp_urls_pointing_internal_are_not_fetched(vectors: Path, dev_pki: DevPki,  # noqa: F811
                                                              tmp_path: Path) -> None:
    ca, key = dev_pki.ca("ap")
    with RevocationServer() as server:
        server.crls["ap"] = make_crl(ca, key, {})
        port = server.base.rsplit(":", 1)[1]
        cases = [
            (server.crl_url("ap"), server.ocsp_url("ap"), "127.0.0.1 is not a public address: loopback"),
            ("http://169.254.169.254/latest/meta-data/ap.crl", f"http://[::1]:{port}/ocsp/ap", "cloud metadata"),
            (f"http://localhost:{port}/crl/ap", f"http://0x7f000001:{port}/ocsp/ap", "loopback name"),
            (f"http://10.1.1.1:{port}/crl/ap", f"http://user@127.0.0.1:{port}/ocsp/ap", "user information"),
        ]
        for n, (crl, ocsp, reason) in enumerate(cases):
            leaf = issue_leaf(dev_pki, cn=f"POP9{n:05d}", crl_url=crl, ocsp_url=ocsp, out_dir=tmp_path,
                              name=f"hostile-{n}")
            checker = revocation_checker(settings_in_test(vectors))
            assert checker is not None
            result = checker.check(leaf.certificate, ca)
            assert result.status == "unknown" and "not fetched" in result.detail, result.detail
            assert reason in result.detail, result.detail
        assert sum(server.hits.values()) == 0
        # the allowed address is asked as usual
        leaf = issue_leaf(dev_pki, cn="POP900100", crl_url=server.crl_url("ap"), out_dir=tmp_path, name="allowed")
        checker = revocation_checker(settings_in_test(vectors, "127.0.0.1/32"))
        assert checker is not None
        assert (checker.check(leaf.certificate, ca).status, server.hits["/crl/ap"]) == ("good", 1)


# --- the AS4 endpoint an SMP names ------------------------------------------------------------------------------

class _As4StandIn:
    """Answers every POST with 200 and counts them (what it answers does not matter here)."""

    def __init__(self) -> None:
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/as4"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_as4_endpoint_on_an_internal_address_gets_nothing(vectors: Path) -> None:
    peer = _As4StandIn()
    try:
        strict = Transport(egress_policy(settings_in_test(vectors)))
        port = peer.url.split(":")[2].split("/")[0]
        for url in (peer.url, f"http://localhost:{port}/as4", "https://169.254.169.254/as4", "https://10.9.9.9/as4"):
            with pytest.raises(TransportError) as refused:
                strict.post(url, "application/soap+xml", [b"<x/>"], 4)
            assert refused.value.kind == "refused" and not refused.value.reached_peer
            failure = classify_transport(refused.value)
            assert not failure.transient and failure.code == "endpoint-refused" and "egress.allow" in failure.hint
        assert peer.posts == 0
        allowed = Transport(egress_policy(settings_in_test(vectors, "127.0.0.1/32")))
        assert allowed.post(peer.url, "application/soap+xml", [b"<x/>"], 4).status == 200
        assert peer.posts == 1
        strict.close()
        allowed.close()
    finally:
        peer.close()
