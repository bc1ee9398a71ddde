"""End to end over real HTTP and real DNS on 127.0.0.1: the local SML with its DNS server, gateway A as its own
process (`peppol-ap serve`) with the admin API, and gateway B's discovery (NAPTR + SMP, nothing else) finding A.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from click.testing import CliRunner

from accesspoint.cli.main import cli
from accesspoint.config import load_config
from accesspoint.gateway import build_gateway
from certs.keystore import load_certificates
from smp.errors import ParticipantNotRegistered
from smp.identifiers import BIS3_INVOICE, BIS3_PROCESS, ParticipantId
from smp.lookup import SmlLookup
from smp.sml import SmlClient
from tests.smp.registry_support import LOCAL_ZONE, ROOT, CaptureServer, LocalSmlProcess, local_sml_process

pytestmark = pytest.mark.integration

ACME = ParticipantId.parse("0007:5567321707")
TAKEN = ParticipantId.parse("0088:7300010000001")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class GatewayA:
    url: str
    env: dict[str, str]
    data_dir: Path
    admin: requests.Session


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
    port = free_port()
    data_dir = tmp_path / "a"
    env = {
        "PEPPOL_AP_STORAGE__DATA_DIR": str(data_dir),
        "PEPPOL_AP_SERVER__PORT": str(port),
        "PEPPOL_AP_SML__MANAGEMENT_URL": sml.url,
        "PEPPOL_AP_SML__DNS_SERVERS": f"127.0.0.1:{sml.dns_port}",
        "PEPPOL_AP_DIRECTORY__URL": directory.base,
        "PEPPOL_AP_LOG__LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "accesspoint.cli.main", "serve"], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gateway A exited: {process.stderr.read() if process.stderr else ''}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway A did not answer /health within 60 s")
            time.sleep(0.2)
        token = CliRunner(env=env).invoke(cli, ["tokens", "create", "--admin"]).output.strip().splitlines()[-1]
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {token}"
        yield GatewayA(url, env, data_dir, admin)
    finally:
        process.terminate()
        process.wait(30)


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


def test_admin_registers_and_another_gateway_finds_it_through_dns_and_smp(
        tmp_path: Path, sml: LocalSmlProcess, gateway_a: GatewayA, directory: CaptureServer) -> None:
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

    # gateway B: its own configuration (own dev PKI, trusting A's CAs), DNS of the local SML, nothing else
    a_pki = gateway_a.data_dir / "pki"
    gateway_b = build_gateway(load_config(None, {
        "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path / "b"),
        "PEPPOL_AP_SML__DNS_SERVERS": f"127.0.0.1:{sml.dns_port}",
        "PEPPOL_AP_TRUST__AP_CA": str(a_pki / "ap-ca.pem"),
        "PEPPOL_AP_TRUST__SMP_CA": str(a_pki / "smp-ca.pem"),
    }))
    found = gateway_b.discovery.find_endpoint(ACME, BIS3_INVOICE, BIS3_PROCESS, use_cache=False)
    assert found.smp_uri == smp_url
    assert found.endpoint_url == gateway_a.url + "/as4"
    assert found.certificate == load_certificates(a_pki / "ap.cert.pem")[0]
    # signed by A's SMP key and verified by B (find_endpoint raises otherwise)
    assert found.certificate_verdict.valid and found.metadata.url.startswith(smp_url + "/")

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
