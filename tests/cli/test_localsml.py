"""`peppol-ap localsml` starts the local SML and its DNS server on 127.0.0.1 (what conf/local-network.toml uses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

from smp.identifiers import ParticipantId
from smp.lookup import SmlLookup
from smp.sml import SmlClient
from tests.e2e.gateway_process import ROOT, free_port


def test_localsml_command_serves_soap_and_dns(tmp_path: Path) -> None:
    port, dns_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "accesspoint.cli.main", "localsml", "--port", str(port), "--dns-port", str(dns_port),
         "--store", str(tmp_path / "zone.sqlite")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().decode().strip() for _ in range(2)]
        assert lines == [f"sml listening on http://127.0.0.1:{port}", f"dns listening on 127.0.0.1:{dns_port}"]
        client = SmlClient(f"http://127.0.0.1:{port}", "LOCAL-A", timeout=10)
        client.create_smp("http://127.0.0.1:8080/smp", "127.0.0.1")
        participant = ParticipantId.parse("0007:5567321707")
        client.create_participant(participant)
        answer = SmlLookup("local.peppol.test", [f"127.0.0.1:{dns_port}"], timeout=5).lookup(participant)
        assert answer.smp_uri == "http://127.0.0.1:8080/smp"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


def test_local_network_layer_points_at_the_localsml_defaults() -> None:
    from accesspoint.cli.localsml import DEFAULT_DNS_PORT, DEFAULT_PORT

    layer = tomllib.loads((ROOT / "conf" / "local-network.toml").read_text())
    assert layer["sml"]["management_url"] == f"http://127.0.0.1:{DEFAULT_PORT}"
    assert layer["sml"]["dns_servers"] == [f"127.0.0.1:{DEFAULT_DNS_PORT}"]
