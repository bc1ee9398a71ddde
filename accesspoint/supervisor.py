"""`peppol-ap run`: the whole gateway in one supervised process tree.

In the local environment: the local SML (its SOAP interface and NAPTR DNS server on loopback), then the web server,
then the background worker, with the gateway pointed at that SML and DNS server and our SMP registered in it, so a
fresh checkout can send to and receive from its own participants with nothing else started. With `sml.management_url`
set (a second local gateway joining the first one's SML, conf/local-network.toml) it starts no SML of its own and
registers our SMP in that one. In test and production:
the web server and the worker (systemd units or containers would rather run `serve` and `worker` apart).

Each child runs in its own process group, so the supervisor decides the order of shutdown: Ctrl-C (SIGINT), SIGTERM
or SIGHUP (the terminal closed) stops the worker, then the web server, then the SML, each with SIGTERM and, after
`STOP_SECONDS`, SIGKILL. On Linux each child also gets SIGTERM from the kernel when the supervisor dies without
stopping them (SIGKILL, a crash): no orphaned gateway keeps the ports and the database.
A child that exits on its own stops the others too, with one line naming it: a gateway without its worker or its
SML is the silent failure this command exists to prevent.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import requests

from accesspoint.config import Config, load_config
from accesspoint.flows.registrations import Registrar, RegistrationConfigError
from accesspoint.gateway import build_gateway
from smp.sml import SmlError

START_SECONDS = 60.0
STOP_SECONDS = 15.0
_SML_LINE = re.compile(r"sml listening on (http://\S+)")
_DNS_LINE = re.compile(r"dns listening on (\S+)")


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# looked up once, here: the forked child only calls it (no library loading between fork and exec)
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with(parent: int) -> Callable[[], None]:
    """preexec_fn of a child: SIGTERM when `parent` dies (Linux), or at once if it died while we forked."""

    def arrange() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return arrange


class StartError(RuntimeError):
    """A child did not start; the message is one line for the operator."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def _tcp_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pump(stream: IO[bytes], out: IO[str], wanted: Callable[[str], None]) -> None:
    """Copy a child's output to ours unchanged (JSON log lines stay JSON); `wanted` sees every line first."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        wanted(line)
        print(line, file=out, flush=True)


class Supervisor:
    def __init__(self, config_path: str | None, environ: Mapping[str, str], out: IO[str] = sys.stdout) -> None:
        self.config_path = config_path
        self.env = dict(environ)
        self.out = out
        self.children: list[Child] = []
        self.stopping = threading.Event()

    # --- starting ---------------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], watch: Callable[[str], None] | None = None) -> Child:
        """Start a child in its own process group; its output is ours (read through `watch` when given)."""
        piped = watch is not None
        process = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE if piped else None,
                                   stderr=subprocess.STDOUT if piped else None, process_group=0,
                                   preexec_fn=_die_with(os.getpid()))
        if watch is not None:
            assert process.stdout is not None
            threading.Thread(target=_pump, args=(process.stdout, self.out, watch), daemon=True).start()
        child = Child(name, process)
        self.children.append(child)
        return child

    def _cli(self, *args: str) -> list[str]:
        config = ["--config", self.config_path] if self.config_path else []
        return [sys.executable, "-m", "accesspoint.cli.main", *args, *config]

    def _start_local_sml(self, cfg: Config) -> None:
        port = cfg.local_sml.port if _tcp_free(cfg.local_sml.port) else 0
        dns_port = cfg.local_sml.dns_port if _udp_free(cfg.local_sml.dns_port) and _tcp_free(
            cfg.local_sml.dns_port) else 0
        found: dict[str, str] = {}
        ready = threading.Event()

        def watch(line: str) -> None:
            for key, pattern in (("sml", _SML_LINE), ("dns", _DNS_LINE)):
                if match := pattern.search(line):
                    found[key] = match.group(1)
            if len(found) == 2:
                ready.set()

        store = cfg.local_sml_store
        store.parent.mkdir(parents=True, exist_ok=True)
        child = self._spawn("sml", [sys.executable, "-m", "smp.localsml", "--port", str(port), "--dns-port",
                                    str(dns_port), "--store", str(store), "--zone", cfg.sml_zone], watch)
        deadline = time.monotonic() + START_SECONDS
        while not ready.wait(0.1):
            if child.process.poll() is not None or time.monotonic() > deadline:
                raise StartError(f"the local SML did not start (see its output above; store {store})")
        # the gateway's children follow the SML we started, wherever a busy port put it; explicit settings win
        if not cfg.sml.management_url:
            self.env["PEPPOL_AP_SML__MANAGEMENT_URL"] = found["sml"]
        if not cfg.sml.dns_servers:
            self.env["PEPPOL_AP_SML__DNS_SERVERS"] = found["dns"]
        if (port, dns_port) != (cfg.local_sml.port, cfg.local_sml.dns_port):
            # commands typed in another terminal look for the configured ports (Config.sml_management_url)
            print(f"peppol-ap: a local_sml port was taken, so the local SML listens on {found['sml']} with DNS "
                  f"{found['dns']}; commands in other terminals need PEPPOL_AP_SML__MANAGEMENT_URL={found['sml']} "
                  f"PEPPOL_AP_SML__DNS_SERVERS={found['dns']}", file=self.out, flush=True)

    def _register_smp(self) -> None:
        """Our SMP in the local SML (idempotent), so participants whose receiving is on can be found at once."""
        gateway = build_gateway(load_config(self.config_path, self.env))
        try:
            with Registrar(gateway) as registrar:
                record = registrar.register_smp()
        except (RegistrationConfigError, SmlError) as exc:
            raise StartError(f"our SMP could not be registered in the local SML: {exc}") from None
        finally:
            gateway.engine.dispose()
        print(f"peppol-ap: our SMP {record.smp_id} is registered in the local SML at {record.logical_address}",
              file=self.out, flush=True)

    def _wait_for(self, child: Child, url: str, ready: Callable[[dict[str, Any]], bool], what: str) -> None:
        """Poll /health until `ready` says yes about its answer (or the child exits, or time runs out)."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StartError(f"the {child.name} process exited with status {child.process.returncode} "
                                 "(see above)")
            try:
                if ready(requests.get(f"{url}/health", timeout=2).json()):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)
        raise StartError(f"{what} within {START_SECONDS:.0f} s ({url}/health)")

    def start(self) -> Config:
        cfg = load_config(self.config_path, self.env)  # configuration errors before anything starts
        build_gateway(cfg).engine.dispose()  # key material, trust and the database migration, once, in order
        if cfg.environment == "local":
            if not cfg.sml.management_url:  # a configured SML is another gateway's (conf/local-network.toml)
                self._start_local_sml(cfg)
            self._register_smp()
            cfg = load_config(self.config_path, self.env)
        url = f"http://{cfg.server.host}:{cfg.server.port}"
        web = self._spawn("web", self._cli("serve"))
        self._wait_for(web, url, lambda _: True, "the web server did not answer")
        worker = self._spawn("worker", self._cli("worker"))
        self._wait_for(worker, url, lambda health: health.get("worker", {}).get("live", 0) > 0,
                       "the worker did not report its first heartbeat")
        return cfg

    # --- running and stopping -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Worker first (it may be sending), then the web server, then the SML: the reverse of starting."""
        for child in reversed(self.children):
            child.signal(signal.SIGTERM)
            try:
                child.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"peppol-ap: the {child.name} process did not stop within {STOP_SECONDS:.0f} s; killing it",
                      file=self.out, flush=True)
                child.signal(signal.SIGKILL)
                child.process.wait()

    def watch(self) -> int:
        """Wait until asked to stop (0) or until a child exits on its own (1)."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    print(f"peppol-ap: the {child.name} process exited with status {code}; stopping the others",
                          file=self.out, flush=True)
                    self.children.remove(child)
                    return 1
        return 0


def run_all(config_path: str | None, overrides: Mapping[str, str]) -> int:
    """Start everything, wait for Ctrl-C / SIGTERM or a failure, stop everything; the exit status."""
    supervisor = Supervisor(config_path, {**os.environ, **overrides})
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: supervisor.stopping.set())
    try:
        try:
            cfg = supervisor.start()
        except StartError as exc:
            print(f"peppol-ap: {exc}", file=sys.stderr, flush=True)
            return 1
        parts = [f"web http://{cfg.server.host}:{cfg.server.port} (health /health)", "worker"]
        if cfg.environment == "local":
            parts.append(f"local SML {cfg.sml.management_url} with DNS {', '.join(cfg.dns_servers)}")
        print(f"peppol-ap {cfg.environment} environment running: {'; '.join(parts)}. Ctrl-C stops all of it.",
              flush=True)
        return supervisor.watch()
    finally:
        supervisor.stop()
