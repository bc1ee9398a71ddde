"""Two gateways on 127.0.0.1 and the Peppol network between them, for the sending end-to-end test and the outbound
benchmark: gateway A (serves participant X, takes submissions on its API, sends with `peppol-ap worker` processes),
gateway B (serves participant Y, receives on POST /as4), a NAPTR DNS server for the SML zone with records for both,
pointing at each gateway's own SMP (`/smp`). Failure paths add participants whose signed metadata a test SMP serves
(`register`), so a test can point the network at a fake AP or name a document type the receiver does not take.

Both gateways share one dev PKI (copied into B's data dir); B has its own AP leaf (seat POP000002), so each
gateway checks a different certificate from the SMP and in the receipt.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from sqlalchemy import select

from accesspoint.config import load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import ApiClient, ApiRole, Participant
from certs.devpki import issue_leaf
from certs.keystore import load_pkcs12
from smp.dnsserver import ZoneServer
from smp.identifiers import ParticipantId
from smp.lookup import naptr_name
from smp.zonestore import ZoneStore, smp_record
from tests.e2e.gateway_process import ROOT, GatewayProcess
from tests.smp.smpserver import EndpointSpec, SmpServer, service_information, sign
from tests.smp.zones import set_records

ZONE = "local.peppol.test"
X = ParticipantId.parse("0007:5567321707")  # served by A: the sender
Y = ParticipantId.parse("0007:5560360793")  # served by B: the receiver
BIS_INVOICE = ("busdox-docid-qns", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                                   "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
BIS_CREDIT_NOTE = ("busdox-docid-qns", "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##"
                                       "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
                                       "::2.1")
BIS_PROCESS = ("cenbii-procid-ubl", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")
FINAL_STATES = ("sent", "failed")


def open_store(gateway: GatewayProcess) -> Gateway:
    """A gateway process's database and blobs, opened from the test (dispose the engine when done)."""
    return build_gateway(load_config(None, gateway.env), migrate=False)


@dataclass
class SendWorld:
    a: GatewayProcess
    b: GatewayProcess
    smp: SmpServer
    zone: ZoneStore
    token: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # ------------------------------------------------------------- network

    def register(self, participant: ParticipantId, as4_url: str, certificate: x509.Certificate,
                 doctypes: tuple[tuple[str, str], ...] = (BIS_INVOICE,)) -> None:
        """Publish `participant` in the SML zone and its signed SMP metadata for `doctypes`, pointing at as4_url."""
        smp_key = load_pkcs12(self.a.pki.smp_p12, self.a.pki.password)
        for doctype in doctypes:
            spec = EndpointSpec(process=BIS_PROCESS, url=as4_url, certificate=certificate)
            body = sign(service_information((participant.scheme, participant.value), doctype, [spec]), smp_key)
            self.smp.serve((participant.scheme, participant.value), doctype, body)
        self.publish(participant, self.smp.base)

    def publish(self, participant: ParticipantId, smp_uri: str) -> None:
        """The SML's NAPTR record for `participant`, pointing at the SMP at `smp_uri`."""
        set_records(self.zone, naptr_name(participant, ZONE), [smp_record(smp_uri)])

    # ------------------------------------------------------------- workers of A

    def start_workers(self, count: int, gateway: GatewayProcess | None = None) -> None:
        """`peppol-ap worker` processes of A (or of `gateway`)."""
        gateway = gateway or self.a
        env = {**os.environ, **gateway.env, "PYTHONPATH": str(ROOT)}
        for number in range(count):
            log = (gateway.data_dir / f"worker-{len(self.workers)}-{number}.log").open("wb")
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "accesspoint.cli.main", "worker"], cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
            log.close()

    def stop_workers(self) -> None:
        for process in self.workers:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        self.workers.clear()

    # ------------------------------------------------------------- A's API

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def submit(self, document: bytes, **headers: str) -> str:
        response = requests.post(f"{self.a.url}/api/v1/outbound", data=document, timeout=30,
                                 headers=self.headers(**{"Content-Type": "application/xml", **headers}))
        if response.status_code != 202:
            raise AssertionError(f"submit answered {response.status_code}: {response.text[:500]}")
        return str(response.json()["id"])

    def status(self, message_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.a.url}/api/v1/outbound/{message_id}", headers=self.headers(), timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def wait_for(self, message_id: str, states: tuple[str, ...] = FINAL_STATES,
                 timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = self.status(message_id)
            if body["state"] in states:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"message {message_id} is {body['state']} after {timeout} s, not in {states}: "
                                     f"{body}")
            time.sleep(0.2)


def token_for(gw: GatewayProcess, participant: ParticipantId) -> str:
    """A network token of the organisation that owns `participant` in this gateway."""
    store = open_store(gw)
    try:
        with store.read() as session:
            member = session.scalar(select(Participant).where(Participant.value_key == participant.value.lower()))
            assert member is not None
            client, token = ApiClient.issue("e2e", ApiRole.NETWORK, member.organisation_id)
            session.add(client)
        return token
    finally:
        store.engine.dispose()


def network_settings(dns_port: int, **sending: int) -> dict[str, str]:
    env = {"PEPPOL_AP_SML__ZONE": ZONE, "PEPPOL_AP_SML__DNS_SERVERS": f"127.0.0.1:{dns_port}",
           "PEPPOL_AP_SMP_CLIENT__NEGATIVE_CACHE_MINUTES": "0"}
    defaults = {"retry_initial_seconds": 1, "retry_max_seconds": 2, "connect_timeout_seconds": 2,
                "response_timeout_seconds": 30, "lease_seconds": 180}
    env.update({f"PEPPOL_AP_SENDING__{k.upper()}": str(v) for k, v in {**defaults, **sending}.items()})
    return env


@contextmanager
def send_world(directory: Path, *, a_database_url: str | None = None, b_workers: int = 2,
               **sending: int) -> Iterator[SendWorld]:
    """Both gateways started, X and Y registered in SML and SMP; A's workers are started by the test."""
    zone = ZoneStore(directory / "zone.sqlite")
    dns = ZoneServer(ZONE, zone).start()
    settings = network_settings(dns.port, **sending)
    a = GatewayProcess(directory / "a", database_url=a_database_url, settings=dict(settings))
    a.data_dir.mkdir(parents=True)
    pki = a.pki
    shutil.copytree(pki.directory, directory / "b" / "pki")
    leaf = issue_leaf(pki, cn="POP000002")
    b = GatewayProcess(directory / "b", workers=b_workers, settings={
        **settings, "PEPPOL_AP_KEYSTORE__PKCS12": str(leaf.p12), "PEPPOL_AP_KEYSTORE__PASSWORD": pki.password})
    try:
        a.prepare(participant=X.value)
        b.prepare(participant=Y.value)
        token = token_for(a, X)
        with SmpServer() as smp:
            world = SendWorld(a, b, smp, zone, token)
            # each gateway's own SMP (/smp, signed with the SMP key, live from its participants) serves its participant
            world.publish(X, f"{a.url}/smp")
            world.publish(Y, f"{b.url}/smp")
            a.start()
            b.start()
            try:
                yield world
            finally:
                world.stop_workers()
                a.stop()
                b.stop()
    finally:
        dns.stop()
