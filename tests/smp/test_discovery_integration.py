"""End to end: a real NAPTR DNS server process and real HTTP SMPs on 127.0.0.1. Every outcome ends
in the right error class."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from base.egress import EgressPolicy
from certs.anchors import TrustAnchors
from certs.devpki import init_pki, issue_leaf
from certs.fetch import http_fetcher
from certs.keystore import KeyMaterial, load_certificates
from certs.revocation import RevocationChecker
from certs.validation import CertificateValidator
from smp.cache import DiscoveryCache
from smp.client import NEGATIVE_ERRORS, Discovery, SmpClient, service_metadata_url
from smp.errors import (
    DiscoveryError,
    DiscoveryUnavailable,
    DiscoveryUntrusted,
    NotSupported,
    ParticipantNotRegistered,
)
from smp.identifiers import BIS3_CREDIT_NOTE, BIS3_INVOICE, BIS3_PROCESS, ParticipantId
from smp.lookup import SmlLookup
from tests.smp.smpserver import (
    ZONE,
    EndpointSpec,
    SmpServer,
    World,
    redirect,
    service_group,
    service_information,
    sign,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PROCESS = (BIS3_PROCESS.scheme, BIS3_PROCESS.value)
DOCTYPE = (BIS3_INVOICE.scheme, BIS3_INVOICE.value)
AP_URL = "https://ap.example.test/as4"

# the SMPs and revocation servers here run on 127.0.0.1, as in the local environment
LOOPBACK = EgressPolicy(loopback=True, plain_http=True)
http_fetch = http_fetcher(LOOPBACK)


def pid(value: str) -> ParticipantId:
    return ParticipantId.parse(value)


def as_tuple(ident: ParticipantId) -> tuple[str, str]:
    return (ident.scheme, ident.value)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_discovery(world: World, validator: CertificateValidator, *, dns_port: int | None = None,
                   **client_args: object) -> Discovery:
    sml = SmlLookup(ZONE, [f"127.0.0.1:{dns_port or world.dns_port}"], timeout=2.0)
    smp = SmpClient(validator, egress=LOOPBACK, timeout=2.0, clock=lambda: NOW, **client_args)
    cache = DiscoveryCache(60, 10, negative_types=NEGATIVE_ERRORS)
    return Discovery(sml, smp, validator, cache)


def publish(world: World, participant: ParticipantId, signer: KeyMaterial, ap_cert: KeyMaterial, *,
            server: SmpServer | None = None, endpoints: list[EndpointSpec] | None = None) -> None:
    server = server or world.smp_a
    world.register(participant, server.base)
    specs = endpoints or [EndpointSpec(PROCESS, AP_URL, ap_cert.certificate)]
    body = sign(service_information(as_tuple(participant), DOCTYPE, specs), signer)
    server.serve(as_tuple(participant), DOCTYPE, body)


def test_registered_participant(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                ap_c: KeyMaterial) -> None:
    participant = pid("9915:registered")
    publish(world, participant, smp_a, ap_c)
    href = service_metadata_url("http://stale-cname-host.example:80", participant, BIS3_INVOICE)
    world.smp_a.serve(as_tuple(participant), None, service_group(as_tuple(participant), [href]))
    result = make_discovery(world, validator).find_endpoint(pid("9915:REGISTERED"), BIS3_INVOICE, BIS3_PROCESS,
                                                      with_service_group=True)
    assert result.endpoint_url == AP_URL
    assert result.smp_uri == world.smp_a.base
    assert result.transport_profile == "peppol-transport-as4-v2_0"
    assert result.certificate_subject == "CN=PXX000003,OU=PEPPOL TEST AP,O=Example AP C,C=XX"
    assert result.certificate_verdict.valid
    stages = [s.stage for s in result.steps]
    assert stages == ["dns", "naptr", "services", "smp", "signature", "smp-certificate", "identifiers", "endpoint",
                      "ap-certificate"]
    assert result.steps[2].data["document_types"] == [BIS3_INVOICE.uri]
    assert result.metadata.certificate_verdict.valid
    assert result.metadata.signature.subject == "CN=PXX000001,OU=PEPPOL TEST SMP,O=Example SMP A,C=XX"


def test_not_registered_is_nxdomain(world: World, validator: CertificateValidator) -> None:
    with pytest.raises(ParticipantNotRegistered, match=r"9915:nobody is not registered in Peppol \(NXDOMAIN for ") \
            as info:
        make_discovery(world, validator).find_endpoint(pid("9915:nobody"), BIS3_INVOICE, BIS3_PROCESS)
    assert [(s.stage, s.ok) for s in info.value.steps] == [("dns", False)]


def test_missing_service_group_does_not_stop_the_lookup(world: World, validator: CertificateValidator,
                                                        smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:
    participant = pid("9915:nogroup")
    publish(world, participant, smp_a, ap_c)
    result = make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS,
                                                            with_service_group=True)
    services = next(s for s in result.steps if s.stage == "services")
    assert not services.ok and "answered 404" in services.detail
    assert result.endpoint_url == AP_URL


def test_unsupported_document_type_is_404(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                          ap_c: KeyMaterial) -> None:
    participant = pid("9915:invoiceonly")
    publish(world, participant, smp_a, ap_c)
    with pytest.raises(NotSupported, match=r"does not support document type .*CreditNote.*answered 404") as info:
        make_discovery(world, validator).find_endpoint(participant, BIS3_CREDIT_NOTE, BIS3_PROCESS)
    assert [s.stage for s in info.value.steps] == ["dns", "naptr", "smp"]


def test_no_endpoint_for_process_profile_or_date(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                                 ap_c: KeyMaterial) -> None:
    participant = pid("9915:futureonly")
    publish(world, participant, smp_a, ap_c, endpoints=[
        EndpointSpec(PROCESS, AP_URL, ap_c.certificate, activation=datetime(2099, 1, 1, tzinfo=UTC)),
        EndpointSpec(PROCESS, "https://as2.example.test", ap_c.certificate, transport_profile="busdox-transport-as2"),
        EndpointSpec(("cenbii-procid-ubl", "urn:other"), AP_URL, ap_c.certificate),
    ])
    with pytest.raises(NotSupported, match=r"no peppol-transport-as4-v2_0 endpoint .*\(3 endpoint"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_smp_down_is_unavailable(world: World, validator: CertificateValidator) -> None:
    participant = pid("9915:smpdown")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    world.register(participant, f"http://127.0.0.1:{closed}")
    with pytest.raises(DiscoveryUnavailable, match="cannot connect to SMP") as info:
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)
    assert info.value.retryable


def test_smp_server_error_is_unavailable(world: World, validator: CertificateValidator) -> None:
    participant = pid("9915:smp500")
    world.register(participant, world.smp_a.base)
    world.smp_a.serve(as_tuple(participant), DOCTYPE, b"oops", status=500)
    with pytest.raises(DiscoveryUnavailable, match="answered HTTP 500"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_http_redirects_are_not_followed(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                         ap_c: KeyMaterial) -> None:
    target = pid("9915:moved-target")
    publish(world, target, smp_a, ap_c)
    participant = pid("9915:moved")
    world.register(participant, world.smp_a.base)
    location = service_metadata_url(world.smp_a.base, target, BIS3_INVOICE)
    world.smp_a.serve(as_tuple(participant), DOCTYPE, b"", status=302, headers={"Location": location})
    before = len(world.smp_a.requests)
    with pytest.raises(DiscoveryUnavailable, match="HTTP 302"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)
    assert len(world.smp_a.requests) == before + 1


def test_dns_down_is_unavailable(world: World, validator: CertificateValidator) -> None:
    discovery = make_discovery(world, validator, dns_port=free_port())
    with pytest.raises(DiscoveryUnavailable, match=r"SML lookup of .* (timed out|failed)"):
        discovery.find_endpoint(pid("9915:anyone"), BIS3_INVOICE, BIS3_PROCESS)


def test_dns_servfail_is_unavailable(world: World, validator: CertificateValidator) -> None:
    participant = pid("9915:servfail")
    world.fail_dns(participant)
    with pytest.raises(DiscoveryUnavailable, match="answered with an error"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_tampered_answer_is_untrusted(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                      ap_c: KeyMaterial) -> None:
    participant = pid("9915:tampered")
    world.register(participant, world.smp_a.base)
    body = sign(service_information(as_tuple(participant), DOCTYPE, [EndpointSpec(PROCESS, AP_URL, ap_c.certificate)]),
                smp_a)
    world.smp_a.serve(as_tuple(participant), DOCTYPE, body.replace(b"ap.example.test", b"evil.example.test"))
    with pytest.raises(DiscoveryUntrusted, match="altered after signing") as info:
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)
    assert not info.value.retryable
    assert info.value.steps[-1].stage == "signature"


def test_unsigned_answer_is_untrusted(world: World, validator: CertificateValidator, ap_c: KeyMaterial) -> None:
    participant = pid("9915:unsigned")
    world.register(participant, world.smp_a.base)
    root = service_information(as_tuple(participant), DOCTYPE, [EndpointSpec(PROCESS, AP_URL, ap_c.certificate)])
    world.smp_a.serve(as_tuple(participant), DOCTYPE, etree.tostring(root))
    with pytest.raises(DiscoveryUntrusted, match="no ds:Signature"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_rogue_signer_is_untrusted(world: World, validator: CertificateValidator, smp_rogue: KeyMaterial,
                                   ap_c: KeyMaterial) -> None:
    participant = pid("9915:rogue")
    publish(world, participant, smp_rogue, ap_c)
    with pytest.raises(DiscoveryUntrusted, match=r"the SMP signing certificate .* is not trusted \(unsupported-issuer"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_endpoint_certificate_from_wrong_ca_is_untrusted(world: World, validator: CertificateValidator,
                                                         smp_a: KeyMaterial, smp_b: KeyMaterial) -> None:
    participant = pid("9915:smpcertasap")
    publish(world, participant, smp_a, smp_b)  # an SMP certificate where an AP certificate belongs
    with pytest.raises(DiscoveryUntrusted, match=r"of .*: the access point certificate .* not trusted"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_identifier_echo_mismatch_is_untrusted(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                               ap_c: KeyMaterial) -> None:
    participant = pid("9915:asked")
    world.register(participant, world.smp_a.base)
    body = sign(service_information(("iso6523-actorid-upis", "9915:other"), DOCTYPE,
                                    [EndpointSpec(PROCESS, AP_URL, ap_c.certificate)]), smp_a)
    world.smp_a.serve(as_tuple(participant), DOCTYPE, body)
    with pytest.raises(DiscoveryUntrusted, match="is about participant iso6523-actorid-upis::9915:other"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def _redirecting(world: World, participant: ParticipantId, smp_a: KeyMaterial, uid: str) -> None:
    world.register(participant, world.smp_a.base)
    href = service_metadata_url(world.smp_b.base, participant, BIS3_INVOICE)
    world.smp_a.serve(as_tuple(participant), DOCTYPE, sign(redirect(href, uid), smp_a))


SMP_B_UID = "C=XX, O=Example SMP B, OU=PEPPOL TEST SMP, CN=PXX000002"


def test_redirect_followed_once(world: World, validator: CertificateValidator, smp_a: KeyMaterial, smp_b: KeyMaterial,
                                ap_c: KeyMaterial) -> None:
    participant = pid("9915:redirected")
    _redirecting(world, participant, smp_a, SMP_B_UID)
    specs = [EndpointSpec(PROCESS, AP_URL, ap_c.certificate)]
    target = sign(service_information(as_tuple(participant), DOCTYPE, specs), smp_b)
    world.smp_b.serve(as_tuple(participant), DOCTYPE, target)
    result = make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)
    assert result.endpoint_url == AP_URL
    assert result.metadata.redirected_from == service_metadata_url(world.smp_a.base, participant, BIS3_INVOICE)
    assert result.metadata.url.startswith(world.smp_b.base)
    assert result.metadata.signature.subject == "CN=PXX000002,OU=PEPPOL TEST SMP,O=Example SMP B,C=XX"
    assert [s.stage for s in result.steps].count("signature") == 2


def test_redirect_target_signed_by_someone_else(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                                ap_c: KeyMaterial) -> None:
    participant = pid("9915:redirect-wrong-signer")
    _redirecting(world, participant, smp_a, SMP_B_UID)
    specs = [EndpointSpec(PROCESS, AP_URL, ap_c.certificate)]
    target = sign(service_information(as_tuple(participant), DOCTYPE, specs), smp_a)
    world.smp_b.serve(as_tuple(participant), DOCTYPE, target)
    with pytest.raises(DiscoveryUntrusted, match=r"is signed by CN=PXX000001.*but the redirecting SMP named"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_second_redirect_is_refused(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                    smp_b: KeyMaterial) -> None:
    participant = pid("9915:redirect-twice")
    _redirecting(world, participant, smp_a, SMP_B_UID)
    again = service_metadata_url(world.smp_a.base, participant, BIS3_INVOICE)
    world.smp_b.serve(as_tuple(participant), DOCTYPE,
                      sign(redirect(again, "CN=PXX000001,OU=PEPPOL TEST SMP,O=Example SMP A,C=XX"), smp_b))
    with pytest.raises(DiscoveryUntrusted, match="redirects again"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_redirect_about_another_participant_is_refused(world: World, validator: CertificateValidator,
                                                       smp_a: KeyMaterial) -> None:
    participant = pid("9915:redirect-elsewhere")
    world.register(participant, world.smp_a.base)
    href = service_metadata_url(world.smp_b.base, pid("9915:someone-else"), BIS3_INVOICE)
    world.smp_a.serve(as_tuple(participant), DOCTYPE, sign(redirect(href, SMP_B_UID), smp_a))
    with pytest.raises(DiscoveryUntrusted, match="not about participant"):
        make_discovery(world, validator).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_oversized_answer_is_refused(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                     ap_c: KeyMaterial) -> None:
    participant = pid("9915:huge")
    publish(world, participant, smp_a, ap_c)
    with pytest.raises(DiscoveryUntrusted, match="more than the 1000 accepted"):
        make_discovery(world, validator, max_bytes=1000).find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)


def test_cache_answers_repeat_lookups_without_requests(world: World, validator: CertificateValidator,
                                                       smp_a: KeyMaterial, ap_c: KeyMaterial) -> None:
    participant = pid("9915:cached")
    publish(world, participant, smp_a, ap_c)
    discovery = make_discovery(world, validator)
    before = len(world.smp_a.requests)
    first = discovery.find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)
    second = discovery.find_endpoint(pid("9915:CACHED"), BIS3_INVOICE, BIS3_PROCESS)
    assert second is first
    assert len(world.smp_a.requests) == before + 1
    for _ in range(2):
        with pytest.raises(ParticipantNotRegistered):
            discovery.find_endpoint(pid("9915:cached-nobody"), BIS3_INVOICE, BIS3_PROCESS)
    stats = discovery.cache.stats()
    assert stats["hits"] == 1 and stats["negative_hits"] == 1 and stats["misses"] == 2
    discovery.forget(participant, BIS3_INVOICE, BIS3_PROCESS)
    assert discovery.find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS) is not first
    assert len(world.smp_a.requests) == before + 2


def test_zone_file_changes_are_picked_up(world: World, validator: CertificateValidator, smp_a: KeyMaterial,
                                         ap_c: KeyMaterial) -> None:
    participant = pid("9915:latecomer")
    discovery = make_discovery(world, validator)
    with pytest.raises(ParticipantNotRegistered):
        discovery.find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS, use_cache=False)
    publish(world, participant, smp_a, ap_c)
    assert discovery.find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS, use_cache=False).endpoint_url == AP_URL


def test_every_error_names_the_participant_and_has_a_hint(world: World, validator: CertificateValidator) -> None:
    with pytest.raises(DiscoveryError) as info:
        make_discovery(world, validator).find_endpoint(pid("9915:hinted"), BIS3_INVOICE, BIS3_PROCESS)
    assert "9915:hinted" in info.value.message
    assert info.value.hint
    assert info.value.to_dict()["kind"] == "participant-not-registered"


def test_revocation_server_down_is_unavailable(world: World, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    dev = init_pki(tmp_path / "pki")
    anchors = TrustAnchors("local", tuple(load_certificates(dev.root_ca)), tuple(load_certificates(dev.ap_ca)),
                           tuple(load_certificates(dev.smp_ca)))
    smp_leaf = issue_leaf(dev, role="smp", cn="PXX000007", crl_url=f"http://127.0.0.1:{closed}/smp.crl")
    ap_leaf = issue_leaf(dev, role="ap", cn="PXX000008")
    participant = pid("9915:revocation-down")
    publish(world, participant, KeyMaterial(smp_leaf.key, smp_leaf.certificate),
            KeyMaterial(ap_leaf.key, ap_leaf.certificate))
    validator = CertificateValidator(anchors, RevocationChecker(http_fetch, timeout=1.0))
    sml = SmlLookup(ZONE, [f"127.0.0.1:{world.dns_port}"], timeout=2.0)
    discovery = Discovery(sml, SmpClient(validator, egress=LOOPBACK, timeout=2.0), validator)
    expected = r"revocation status of the SMP signing certificate .*PXX000007"
    with pytest.raises(DiscoveryUnavailable, match=expected) as info:
        discovery.find_endpoint(participant, BIS3_INVOICE, BIS3_PROCESS)
    assert info.value.retryable
    assert info.value.steps[-1].stage == "smp-certificate" and info.value.steps[-1].data["reason"] == \
        "revocation-unknown"
