"""The README's first command, exactly as a newcomer types it, in a fresh copy of the checkout: `make run` installs
into a new .venv and starts the whole gateway (web, worker, local SML with its DNS server). Then an invoice
submitted with the README's second block (an organisation and a network token in two commands, then curl) to a
participant served by the same gateway is found through the local SML's NAPTR record and our SMP, sent over AS4,
receipted, and lands in the inbox; nothing else is started by hand.
Ctrl-C (SIGINT to the terminal's process group) stops all of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.gateway_process import free_port
from tests.e2e.terminal import Console, copy_checkout, local_sml_ports, readme_blocks, with_ports

pytestmark = pytest.mark.integration

INSTALL_AND_START_SECONDS = 600  # a fresh .venv: pip installs every dependency (from its cache when it has one)
SENDER, RECEIVER = "0088:7300010000001", "0007:5567321707"  # conf/examples/invoice.xml


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[Path, Console, int, dict[str, str]]]:
    checkout = tmp_path / "peppol-ap"
    copy_checkout(checkout)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPOL_AP_") and k != "VIRTUAL_ENV"}
    sml_ports = local_sml_ports()
    env.update(sml_ports)
    # a session of its own, as a terminal gives the command it runs: Ctrl-C goes to that whole process group
    process = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=checkout, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    console = Console(process)
    try:
        yield checkout, console, port, sml_ports
    finally:
        if process.poll() is None:  # a failed test: Ctrl-C, then no mercy for what is left of the session
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        leftovers = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True).stdout
        for pid in leftovers.split():
            os.kill(int(pid), signal.SIGKILL)


def test_make_run_starts_everything_and_an_invoice_goes_out_and_comes_in(
        quickstart: tuple[Path, Console, int, dict[str, str]]) -> None:
    checkout, console, port, sml_ports = quickstart
    console.wait_for(r"environment running: web http://127\.0\.0\.1:\d+ .*worker.*local SML", INSTALL_AND_START_SECONDS)
    base = f"http://127.0.0.1:{port}"
    health = requests.get(f"{base}/health", timeout=10).json()
    assert health["status"] == "ok", health["reasons"]
    assert health["worker"]["live"] == 1

    # the README's first invoice, typed as written in a second terminal (on the test's port)
    [script] = readme_blocks("quickstart")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPOL_AP_")}
    env.update(sml_ports)
    typed = subprocess.run(["bash", "-euo", "pipefail", "-c", with_ports(script, {8080: port})], cwd=checkout,
                           env=env, capture_output=True, text=True, timeout=120)
    assert typed.returncode == 0, typed.stdout + typed.stderr
    *_, submitted, inbox = typed.stdout.strip().splitlines()
    assert json.loads(submitted)["state"] == "queued"
    items = json.loads(inbox)["items"]
    assert len(items) == 1, typed.stdout + typed.stderr + "\n".join(console.lines[-30:])
    [received] = items
    assert received["sender"].endswith(SENDER) and received["receiver"].endswith(RECEIVER)
    assert "SML registered" in typed.stdout  # the registrations, with receiving switched on
    # each command says which gateway's database it acts on
    assert f"database sqlite:///{checkout / 'var' / 'gateway.db'}" in typed.stderr

    # Ctrl-C: the whole tree stops, cleanly and soon
    os.killpg(console.process.pid, signal.SIGINT)
    assert console.process.wait(60) in (0, 2, -signal.SIGINT)  # make answers an interrupt with 2
    leftovers = subprocess.run(["pgrep", "-f", str(checkout)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], leftovers
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/health", timeout=5)
