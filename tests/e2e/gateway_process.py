"""The gateway as its own process on 127.0.0.1 (`python -m accesspoint.cli.main serve`, gunicorn), for end-to-end
tests and benchmarks: a data dir with a dev PKI made up front, a seeded participant, a sender's key material, and
start / SIGKILL / restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from accesspoint.config import load_config
from accesspoint.gateway import build_gateway
from accesspoint.store.models import Organisation, Participant
from certs.devpki import DevPki, ensure_dev_pki, issue_leaf
from certs.keystore import KeyMaterial, load_pem

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60
RECEIVER = "0002:FR23342"  # the customer of vectors/bis/base-example.xml


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class GatewayProcess:
    """One gateway: `start()` it, `kill()` it (SIGKILL to its whole process group), `start()` it again."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    workers: int = 1
    database_url: str | None = None
    settings: dict[str, str] = field(default_factory=dict)  # more PEPPOL_AP_* variables
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def env(self) -> dict[str, str]:
        env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(self.data_dir), "PEPPOL_AP_SERVER__PORT": str(self.port)}
        if self.database_url:
            env["PEPPOL_AP_DATABASE__URL"] = self.database_url
        return {**env, **self.settings}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def as4_url(self) -> str:
        return f"{self.url}/as4"

    @property
    def pki(self) -> DevPki:
        return ensure_dev_pki(self.data_dir / "pki")

    @property
    def certificate_pem(self) -> Path:
        return self.pki.ap_cert

    def prepare(self, participant: str = RECEIVER) -> None:
        """Dev PKI, migrated database and one organisation receiving BIS Billing 3.0 for `participant`."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        gateway = build_gateway(load_config(None, self.env))
        try:
            with gateway.read() as session:
                member = Participant(value=participant, receiving_enabled=True)
                member.add_default_document_types()
                session.add(Organisation(name="Receiver AB", country="SE", participants=[member]))
        finally:
            gateway.engine.dispose()

    def sender(self, cn: str = "POP000002") -> tuple[KeyMaterial, Path, Path]:
        """Key material of another AP under the same dev AP CA: (material, key PEM, certificate PEM)."""
        leaf = issue_leaf(self.pki, cn=cn)
        return load_pem(leaf.key_pem, leaf.cert_pem), leaf.key_pem, leaf.cert_pem

    def start(self) -> None:
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        log = (self.data_dir / f"gateway-{self.starts}.log").open("wb")
        self.starts += 1
        # `serve` disposes the master's database pool in each forked worker (accesspoint/server.py post_fork)
        command = [sys.executable, "-m", "accesspoint.cli.main", "serve", "--workers", str(self.workers)]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the gateway did not answer /health within {START_TIMEOUT_SECONDS} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        logs = sorted(self.data_dir.glob("gateway-*.log"))
        return logs[-1].read_text(errors="replace")[-4000:] if logs else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master we started)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def kill(self) -> None:
        """SIGKILL the gunicorn master and its workers at once (they share the process group we started)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None
