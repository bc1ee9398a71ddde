"""`peppol-ap run` as a process tree: a closed terminal (SIGHUP) stops everything cleanly, and a supervisor killed
outright (SIGKILL, no chance to stop its children) leaves no orphaned web server, worker or SML behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.gateway_process import free_port
from tests.e2e.terminal import Console, local_sml_ports

pytestmark = pytest.mark.integration

START_SECONDS = 120


def _session(console: Console) -> list[str]:
    """The processes of the supervisor's session (its own and its children's process groups): orphans included."""
    return subprocess.run(["pgrep", "-s", str(console.process.pid)], capture_output=True, text=True).stdout.split()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Console, str]]:
    data = tmp_path / "gateway-data"
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PEPPOL_AP_")},
           "PEPPOL_AP_STORAGE__DATA_DIR": str(data), **local_sml_ports()}
    console = Console(subprocess.Popen([sys.executable, "-m", "accesspoint.cli.main", "run", "--port", str(port)],
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       start_new_session=True))
    try:
        console.wait_for(r"environment running: .*worker.*local SML", START_SECONDS)
        assert len(_session(console)) >= 6  # supervisor, SML, its DNS server, gunicorn and a worker, the worker
        yield console, f"http://127.0.0.1:{port}"
    finally:
        if console.process.poll() is None:
            console.process.kill()
        for pid in _session(console):
            os.kill(int(pid), signal.SIGKILL)


def _wait_until_gone(console: Console, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := _session(console)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], subprocess.run(["ps", "-o", "pid,args", "-p", ",".join(left)], capture_output=True,
                                      text=True).stdout
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health", timeout=5)


def test_a_closed_terminal_stops_everything_cleanly(running: tuple[Console, str]) -> None:
    console, url = running
    console.process.send_signal(signal.SIGHUP)
    assert console.process.wait(60) == 0, console.lines[-20:]
    _wait_until_gone(console, url, 10)


def test_a_killed_supervisor_leaves_no_orphans(running: tuple[Console, str]) -> None:
    console, url = running
    console.process.kill()  # the supervisor alone: its children are in process groups of their own
    console.process.wait(10)
    _wait_until_gone(console, url, 30)
