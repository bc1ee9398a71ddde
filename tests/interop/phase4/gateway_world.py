"""Our gateway as its own processes next to the phase4 peer: `peppol-ap serve` (gunicorn) and `peppol-ap worker`,
set up the way an operator would (tokens with the CLI, the organisation and its participants with the admin API),
plus the Peppol network between the two access points: an SML zone on a loopback DNS server and an SMP that
publishes the phase4 peer's participants.

Both access points use the harness's dev PKI: the gateway's data dir gets a copy of it, so its AP certificate is
the PKI's own AP leaf (POP000001) and its SMP key the PKI's SMP leaf; the peer is POP000002 under the same AP CA.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography import x509

from certs.devpki import DevPki
from certs.keystore import load_pkcs12
from smp.dnsserver import ZoneServer
from smp.identifiers import ParticipantId
from smp.lookup import naptr_name
from smp.zonestore import ZoneStore, smp_record
from tests.e2e.gateway_process import ROOT, GatewayProcess
from tests.interop.phase4.harness import BIS3_CREDIT_NOTE, BIS3_INVOICE, BIS3_PROCESS
from tests.smp.smpserver import EndpointSpec, SmpServer, service_information, sign
from tests.smp.zones import set_records

ZONE = "local.peppol.test"
DOCTYPE_SCHEME = "busdox-docid-qns"
PROCESS = ("cenbii-procid-ubl", BIS3_PROCESS)
FINAL_STATES = ("sent", "failed")


@dataclass
class GatewayWorld:
    gateway: GatewayProcess
    smp: SmpServer
    zone: ZoneStore
    network_token: str = ""
    organisation_id: int = 0
    worker: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def smp_url(self) -> str:
        """Our SMP's base URL (what the SML would point senders at)."""
        return f"{self.gateway.url}/smp"

    # ------------------------------------------------------------------ set-up as an operator does it

    def cli(self, *args: str) -> str:
        """Run `peppol-ap ARGS` against the gateway's configuration; its standard output."""
        done = subprocess.run([sys.executable, "-m", "accesspoint.cli.main", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=False,
                              env={**os.environ, **self.gateway.env, "PYTHONPATH": str(ROOT)})
        if done.returncode != 0:
            raise AssertionError(f"peppol-ap {' '.join(args)} exited {done.returncode}: {done.stdout}{done.stderr}")
        return done.stdout

    def create_token(self, *args: str) -> str:
        # `tokens create` prints the token alone on its last line
        return self.cli("tokens", "create", *args).strip().splitlines()[-1]

    def create_organisation(self, admin_token: str, name: str, participants: dict[str, bool]) -> int:
        """An organisation owning `participants` (identifier -> receiving) through the admin API; receiving ones
        get the default BIS document types and are served by our SMP at once (no SML is configured here, so the
        SML step of their registration fails, which is the gateway's documented state for that)."""
        body = {"name": name, "country": "SE",
                "participants": [{"identifier": i, "receiving": r} for i, r in participants.items()]}
        response = requests.post(f"{self.url}/admin/api/organisations", json=body, timeout=60,
                                 headers=self._auth(admin_token))
        if response.status_code != 201:
            raise AssertionError(f"creating the organisation answered {response.status_code}: {response.text[:1000]}")
        return int(response.json()["id"])

    def start_worker(self) -> None:
        log = (self.gateway.data_dir / "worker.log").open("wb")
        self.worker = subprocess.Popen([sys.executable, "-m", "accesspoint.cli.main", "worker"], cwd=ROOT,
                                       env={**os.environ, **self.gateway.env, "PYTHONPATH": str(ROOT)}, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def stop_worker(self) -> None:
        if self.worker is None:
            return
        try:
            os.killpg(self.worker.pid, signal.SIGTERM)
            self.worker.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(timeout=30)
        self.worker = None

    # ------------------------------------------------------------------ the network: SML zone and the peer's SMP

    def publish(self, participant: str, as4_url: str, certificate: x509.Certificate, smp_signer: DevPki) -> None:
        """Publish `participant` as served at `as4_url` (with `certificate`) for BIS invoices and credit notes."""
        pid = ParticipantId.parse(participant)
        signer = load_pkcs12(smp_signer.smp_p12, smp_signer.password)
        for doctype in (BIS3_INVOICE, BIS3_CREDIT_NOTE):
            spec = EndpointSpec(process=PROCESS, url=as4_url, certificate=certificate)
            body = sign(service_information((pid.scheme, pid.value), (DOCTYPE_SCHEME, doctype), [spec]), signer)
            self.smp.serve((pid.scheme, pid.value), (DOCTYPE_SCHEME, doctype), body)
        set_records(self.zone, naptr_name(pid, ZONE), [smp_record(self.smp.base)])

    # ------------------------------------------------------------------ network API

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self._auth(self.network_token), **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=kwargs.pop("timeout", 60),
                                **kwargs)

    def submit(self, document: bytes, receiver: str) -> dict[str, Any]:
        response = self.api("POST", "/api/v1/outbound", data=document, params={"receiver": receiver},
                            headers={"Content-Type": "application/xml"}, timeout=300)
        if response.status_code != 202:
            raise AssertionError(f"submit answered {response.status_code}: {response.text[:1000]}")
        return dict(response.json())

    def wait_for(self, message_id: str, timeout: float = 120) -> dict[str, Any]:
        """The outbound status document once the message is `sent` or `failed`."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.api("GET", f"/api/v1/outbound/{message_id}")
            response.raise_for_status()
            body = dict(response.json())
            if body["state"] in FINAL_STATES:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"outbound {message_id} is still {body['state']} after {timeout:.0f} s: {body}\n"
                                     f"worker log: {self.worker_log_tail()}")
            time.sleep(0.2)

    def inbound_by_as4_id(self, as4_message_id: str) -> list[dict[str, Any]]:
        """Our inbox entries (network API) carrying this AS4 MessageId."""
        found: list[dict[str, Any]] = []
        url: str | None = "/api/v1/inbound?limit=100"
        while url:
            response = self.api("GET", url)
            response.raise_for_status()
            page = response.json()
            found += [m for m in page["items"] if m["as4_message_id"] == as4_message_id]
            url = page["next"]
        return found

    def worker_log_tail(self) -> str:
        path = self.gateway.data_dir / "worker.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def network_settings(dns_port: int) -> dict[str, str]:
    """Our SML zone on the loopback DNS server, no negative discovery cache, quick retries (the tests wait), and
    time for phase4 to answer a 20 MB message."""
    return {
        "PEPPOL_AP_SML__ZONE": ZONE,
        "PEPPOL_AP_SML__DNS_SERVERS": f"127.0.0.1:{dns_port}",
        "PEPPOL_AP_SMP_CLIENT__NEGATIVE_CACHE_MINUTES": "0",
        "PEPPOL_AP_SENDING__RETRY_INITIAL_SECONDS": "1",
        "PEPPOL_AP_SENDING__RETRY_MAX_SECONDS": "2",
        "PEPPOL_AP_SENDING__CONNECT_TIMEOUT_SECONDS": "5",
        # phase4 4.4.1 takes ~90 s on this 2-core box to decrypt a 15 MB ciphertext (phase4 -> phase4 too), close
        # to our default 120 s answer time-out; the 20 MB scenario must not hinge on the machine's load.
        "PEPPOL_AP_SENDING__RESPONSE_TIMEOUT_SECONDS": "400",
        "PEPPOL_AP_SENDING__LEASE_SECONDS": "600",
    }


@contextmanager
def gateway_world(directory: Path, pki: DevPki, participants: dict[str, bool]) -> Iterator[GatewayWorld]:
    """Gateway and worker running on `pki` (copied into its data dir), one organisation owning `participants`
    (identifier -> receiving), a network token for it, and an empty SML zone + SMP for the peer."""
    directory.mkdir(parents=True, exist_ok=True)
    zone = ZoneStore(directory / "zone.sqlite")
    dns = ZoneServer(ZONE, zone).start()
    data_dir = directory / "gateway"
    shutil.copytree(pki.directory, data_dir / "pki")
    process = GatewayProcess(data_dir, settings=network_settings(dns.port))
    try:
        with SmpServer() as smp:
            world = GatewayWorld(process, smp, zone)
            process.start()
            try:
                admin_token = world.create_token("--admin", "--name", "phase4 interop admin")
                world.organisation_id = world.create_organisation(admin_token, "phase4 interop customer", participants)
                world.network_token = world.create_token("--org", str(world.organisation_id),
                                                         "--name", "phase4 interop network")
                world.start_worker()
                yield world
            finally:
                world.stop_worker()
                process.stop()
    finally:
        dns.stop()
        zone.close()
