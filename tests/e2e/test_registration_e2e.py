"""End to end over real HTTP and real DNS on 127.0.0.1: the local SML with its DNS server, gateway A as its own
process (`peppol-ap serve`) with the admin API, and gateway B's discovery (NAPTR + SMP, nothing else) finding A,
then sending an invoice to the endpoint it found and verifying A's signed receipt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from click.testing import CliRunner
from cryptography import x509

from accesspoint.cli.main import cli
from accesspoint.config import load_config
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.outbound import build_message
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.gateway import build_gateway
from certs.keystore import load_certificates
from smp.errors import ParticipantNotRegistered
from smp.identifiers import BIS3_INVOICE, BIS3_PROCESS, ParticipantId
from smp.lookup import SmlLookup
from smp.sml import SmlClient
from tests.e2e.gateway_process import GatewayProcess
from tests.smp.registry_support import LOCAL_ZONE, CaptureServer, LocalSmlProcess, local_sml_process

NOW = datetime.now(UTC)  # the tests' time for what they build

pytestmark = pytest.mark.integration

ACME = ParticipantId.parse("0007:5567321707")
TAKEN = ParticipantId.parse("0088:7300010000001")


@dataclass(frozen=True)
class GatewayA:
    process: GatewayProcess
    admin: requests.Session

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture
def sml(tmp_path: Path) -> Iterator[LocalSmlProcess]:
    with local_sml_process(tmp_path / "sml") as running:
        yield running


@pytest.fixture
def directory() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture
def gateway_a(tmp_path: Path, sml: LocalSmlProcess, directory: CaptureServer) -> Iterator[GatewayA]:
    process = GatewayProcess(tmp_path / "a", settings={
        "PEPPOL_AP_SML__MANAGEMENT_URL": sml.url,
        "PEPPOL_AP_SML__DNS_SERVERS": f"127.0.0.1:{sml.dns_port}",
        "PEPPOL_AP_DIRECTORY__URL": directory.base,
    })
    process.data_dir.mkdir(parents=True)
    process.start()
    try:
        token = CliRunner(env=process.env).invoke(cli, ["tokens", "create", "--admin"]).output.strip().splitlines()[-1]
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {token}"
        yield GatewayA(process, admin)
    finally:
        process.stop()


def gateway_a_certificate(pki: Path) -> x509.Certificate:
    return load_certificates(pki / "ap.cert.pem")[0]


def wait_for(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Poll `check` until it returns without raising (the DNS server picks up record changes by polling)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, ParticipantNotRegistered):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_admin_registers_and_another_gateway_finds_it_and_sends_to_it(
        tmp_path: Path, vectors: Path, sml: LocalSmlProcess, gateway_a: GatewayA, directory: CaptureServer) -> None:
    api = gateway_a.url + "/admin/api"
    smp_url = gateway_a.url + "/smp"
    registered_smp = gateway_a.admin.put(api + "/sml", timeout=30)
    assert registered_smp.status_code == 200, registered_smp.text
    assert registered_smp.json()["logical_address"] == smp_url

    # another provider holds TAKEN already
    other = SmlClient(sml.url, "OTHER-SMP", timeout=10)
    other.create_smp("http://other-provider.invalid/smp", "127.0.0.2")
    other.create_participant(TAKEN)

    created = gateway_a.admin.post(api + "/organisations", timeout=60, json={
        "name": "Acme AB", "country": "SE", "org_number": "5567321707",
        "participants": [{"identifier": "0007:5567321707", "receiving": True},
                         {"identifier": "0088:7300010000001", "receiving": True}],
    })
    assert created.status_code == 201, created.text
    acme, taken = created.json()["participants"]
    assert acme["registration"]["sml"] == {"status": "registered", "error": None}
    assert acme["registration"]["directory"]["status"] == "registered"
    assert taken["registration"]["sml"]["status"] == "registered-elsewhere"
    assert "Ask the current provider for a migration key" in taken["registration"]["sml"]["error"]
    assert [(r.method, r.body) for r in directory.requests] == [("PUT", ACME.uri.encode())]

    # the NAPTR record points at A's SMP
    lookup = SmlLookup(LOCAL_ZONE, [f"127.0.0.1:{sml.dns_port}"], timeout=5)
    assert wait_for(lambda: lookup.lookup(ACME)).smp_uri == smp_url

    # gateway B: its own configuration, trusting A's CAs, DNS of the local SML, nothing else; its AP
    # certificate comes from A's dev CA so that A trusts B (one network, one AP CA)
    a_pki = gateway_a.process.pki.directory
    _, b_key, b_certificate = gateway_a.process.sender("POP000002")
    gateway_b = build_gateway(load_config(None, {
        "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path / "b"),
        "PEPPOL_AP_KEYSTORE__KEY": str(b_key),
        "PEPPOL_AP_KEYSTORE__CERTIFICATE": str(b_certificate),
        "PEPPOL_AP_SML__DNS_SERVERS": f"127.0.0.1:{sml.dns_port}",
        "PEPPOL_AP_TRUST__AP_CA": str(a_pki / "ap-ca.pem"),
        "PEPPOL_AP_TRUST__SMP_CA": str(a_pki / "smp-ca.pem"),
    }))
    found = gateway_b.discovery.find_endpoint(ACME, BIS3_INVOICE, BIS3_PROCESS, use_cache=False)
    assert found.smp_uri == smp_url
    assert found.endpoint_url == gateway_a.url + "/as4"
    assert found.certificate == gateway_a_certificate(a_pki)
    # signed by A's SMP key and verified by B (find_endpoint raises otherwise)
    assert found.certificate_verdict.valid and found.metadata.url.startswith(smp_url + "/")

    # B sends an invoice for ACME to the endpoint it found, encrypted for the certificate it found
    invoice = (vectors / "bis" / "base-example.xml").read_bytes().replace(
        b'<cbc:EndpointID schemeID="0002">FR23342</cbc:EndpointID>',
        b'<cbc:EndpointID schemeID="0007">5567321707</cbc:EndpointID>')
    sbdh = sbdh_from_ubl(invoice, country_c1="NO", creation=datetime.now(UTC))
    assert sbdh.receiver == ACME
    message = build_message(sbd=build_sbd(sbdh, invoice), our_key=gateway_b.key, recipient_cert=found.certificate,
                            domain=gateway_b.message_id_domain, now=datetime.now(UTC))
    response = requests.post(found.endpoint_url, data=b"".join(message.chunks()),
                             headers={"Content-Type": message.content_type}, timeout=60)
    assert response.status_code == 200, response.text[:500]
    verdict = verify_receipt(response.content, sent_message_id=message.message_id,
                             sent_references=message.sent_references)
    assert verdict.valid, verdict.problems
    assert verdict.signer == gateway_a_certificate(a_pki)

    # unregister: NXDOMAIN, SMP 404, Directory told
    state = gateway_a.admin.post(f"{api}/participants/{acme['id']}/receiving", json={"enabled": False}, timeout=60)
    assert state.status_code == 200 and state.json()["sml"] == {"status": "unregistered", "error": None}

    def gone() -> ParticipantNotRegistered:
        try:
            lookup.lookup(ACME)
        except ParticipantNotRegistered as exc:
            return exc
        raise AssertionError(f"{ACME.uri} is still in DNS")

    assert "NXDOMAIN" in str(wait_for(gone))
    assert requests.get(f"{smp_url}/{quote(ACME.uri, safe='')}", timeout=10).status_code == 404
    assert directory.requests[-1].method == "DELETE"
    with pytest.raises(ParticipantNotRegistered):
        gateway_b.discovery.find_endpoint(ACME, BIS3_INVOICE, BIS3_PROCESS, use_cache=False)
    # and a sender with a stale cache is told A no longer serves the participant
    late = build_message(sbd=build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=NOW), invoice),
                         our_key=gateway_b.key,
                         recipient_cert=found.certificate, domain=gateway_b.message_id_domain, now=datetime.now(UTC))
    refused = requests.post(found.endpoint_url, data=b"".join(late.chunks()),
                            headers={"Content-Type": late.content_type}, timeout=60)
    assert b"PEPPOL:NOT_SERVICED" in refused.content
