"""The README's first command, exactly as a newcomer types it, in a fresh copy of the checkout: `make run` installs
into a new .venv and starts the whole gateway (web, worker, local SML with its DNS server). Then an invoice
submitted through the network API to a participant served by the same gateway is found through the local SML's
NAPTR record and our SMP, sent over AS4, receipted, and lands in the inbox; nothing else is started by hand.
Ctrl-C (SIGINT to the terminal's process group) stops all of it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.gateway_process import ROOT, free_port

pytestmark = pytest.mark.integration

INSTALL_AND_START_SECONDS = 600  # a fresh .venv: pip installs every dependency (from its cache when it has one)
SENDER, RECEIVER = "0088:9482348239847239874", "0007:5567321707"


def _copy_checkout(target: Path) -> None:
    """The files a clone would have (tracked and new, minus what .gitignore excludes), nothing built."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


class Console:
    """The terminal: the output of `make run`, read as it comes."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.lines: list[str] = []
        assert process.stdout is not None
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if match := re.search(pattern, line):
                    return match
            seen = len(self.lines)
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}; the output ends:\n" + "\n".join(self.lines[-40:]))


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[Path, Console, int]]:
    checkout = tmp_path / "peppol-ap"
    _copy_checkout(checkout)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPOL_AP_") and k != "VIRTUAL_ENV"}
    # a session of its own, as a terminal gives the command it runs: Ctrl-C goes to that whole process group
    process = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=checkout, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    console = Console(process)
    try:
        yield checkout, console, port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_make_run_starts_everything_and_an_invoice_goes_out_and_comes_in(
        quickstart: tuple[Path, Console, int], vectors: Path) -> None:
    checkout, console, port = quickstart
    console.wait_for(r"environment running: web http://127\.0\.0\.1:\d+ .*worker.*local SML", INSTALL_AND_START_SECONDS)
    base = f"http://127.0.0.1:{port}"
    health = requests.get(f"{base}/health", timeout=10).json()
    assert health["status"] == "ok", health["reasons"]
    assert health["worker"]["live"] == 1

    peppol_ap = [str(checkout / ".venv" / "bin" / "peppol-ap")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPOL_AP_")}

    def cli(*args: str) -> str:
        done = subprocess.run([*peppol_ap, *args], cwd=checkout, env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip().splitlines()[-1]

    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {cli('tokens', 'create', '--admin')}"
    created = admin.post(f"{base}/admin/api/organisations", timeout=60, json={
        "name": "Acme AB", "country": "SE", "org_number": "5567321707",
        "participants": [{"identifier": SENDER, "receiving": False}, {"identifier": RECEIVER, "receiving": True}],
    })
    assert created.status_code == 201, created.text
    organisation = created.json()
    receiving = next(p for p in organisation["participants"] if p["identifier"].endswith(RECEIVER))
    assert receiving["registration"]["sml"] == {"status": "registered", "error": None}
    network = requests.Session()
    network.headers["Authorization"] = f"Bearer {cli('tokens', 'create', '--org', str(organisation['id']))}"

    invoice = (vectors / "bis" / "base-example.xml").read_bytes().replace(
        b'<cbc:EndpointID schemeID="0002">FR23342</cbc:EndpointID>',
        b'<cbc:EndpointID schemeID="0007">5567321707</cbc:EndpointID>')
    submitted = network.post(f"{base}/api/v1/outbound", data=invoice, timeout=30,
                             headers={"Content-Type": "application/xml"})
    assert submitted.status_code == 202, submitted.text
    status_url = base + submitted.headers["Location"]

    # the NAPTR record may take the DNS server a moment; the worker retries a lookup that failed
    deadline = time.monotonic() + 120
    while (status := network.get(status_url, timeout=10).json())["state"] != "sent":
        assert status["state"] in ("queued", "sending", "retrying"), status
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["receiving_ap"]["endpoint_url"] == f"{base}/as4"

    inbox = network.get(f"{base}/api/v1/inbound", timeout=10).json()["items"]
    assert [item["sbdh_instance_id"] for item in inbox] == [status["sbdh_instance_id"]]

    # Ctrl-C: the whole tree stops, cleanly and soon
    os.killpg(console.process.pid, signal.SIGINT)
    assert console.process.wait(60) in (0, 2, -signal.SIGINT)  # make answers an interrupt with 2
    leftovers = subprocess.run(["pgrep", "-f", str(checkout)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], leftovers
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/health", timeout=5)
