"""A sending gateway and a Peppol network around it, all real and on 127.0.0.1: a NAPTR DNS server for the SML
zone, a signed SMP, and a receiving access point that opens our AS4 messages with the project's inbound code and
answers the way a test asks (receipt, ebMS error, HTTP 500, a receipt whose NRI digest is wrong, or nothing)."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from accesspoint.config import load_config
from accesspoint.core.as4 import ns
from accesspoint.core.as4.errors import NOT_SERVICED, OTHER, As4Error
from accesspoint.core.as4.receipts import sign_receipt
from accesspoint.core.peppol.inbound import InboundRefusal, error_response, open_message, respond
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import ApiClient, ApiRole, Organisation, Participant
from certs.devpki import DevPki, ensure_dev_pki, issue_leaf
from certs.keystore import KeyMaterial, load_pkcs12
from certs.validation import CertificateValidator, Purpose
from smp.dnsserver import ZoneServer
from smp.identifiers import ParticipantId
from smp.lookup import naptr_name
from smp.zonestore import ZoneStore, smp_record
from tests.conftest import rules_env
from tests.smp.smpserver import EndpointSpec, SmpServer, service_information, sign
from tests.smp.zones import set_records

ZONE = "local.peppol.test"
STALL_SECONDS = 3
SENDER = ParticipantId.parse("0007:5567321707")
RECEIVER = ParticipantId.parse("0007:5560360793")
BIS_INVOICE = ("busdox-docid-qns", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
                                   "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
BIS_PROCESS = ("cenbii-procid-ubl", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")


def invoice(template: Path, sender: ParticipantId = SENDER, receiver: ParticipantId = RECEIVER) -> bytes:
    """The BIS base example with our sender and receiver as EndpointIDs."""
    text = template.read_text(encoding="utf-8")
    endpoints = iter([sender, receiver])

    def endpoint(_match: re.Match[str]) -> str:
        pid = next(endpoints)
        return f'<cbc:EndpointID schemeID="{pid.icd}">{pid.local_id}</cbc:EndpointID>'

    return re.sub(r"<cbc:EndpointID [^>]*>[^<]*</cbc:EndpointID>", endpoint, text, count=2).encode()


@dataclass
class FakeAccessPoint:
    """A receiving AP: `mode` decides the answer; `received` collects the AS4 MessageIds it opened."""

    key: KeyMaterial
    validator: CertificateValidator
    mode: str = "receipt"
    received: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    documents: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        mode = self.mode
        if mode == "http500":
            request.get_data()
            return Response("internal error", status=500, mimetype="text/plain")(environ, start_response)
        body = request.get_data()
        with self.lock:
            self.bodies.append(body)
        try:
            inbound = open_message(body, request.headers.get("Content-Type"), our_key=self.key,
                                   now=datetime.now(UTC),
                                   check_signer=lambda c: self.validator.validate(c, Purpose.AP_SIGNING))
        except InboundRefusal as exc:
            body = error_response(exc, exc.message_id, self.key, now=datetime.now(UTC))
            return Response(body, status=exc.http_status, mimetype="application/soap+xml")(environ, start_response)
        with inbound:
            with self.lock:
                self.received.append(inbound.message_id)
                assert inbound.payload is not None
                self.documents.append(inbound.payload.read())
            if mode == "stall":  # keeps the message but answers too late: the sender times out
                time.sleep(STALL_SECONDS)
            if mode == "not-serviced":
                error = As4Error(OTHER, "the receiver is not serviced here", NOT_SERVICED)
                body = error_response(error, inbound.message_id, self.key, now=datetime.now(UTC))
            elif mode == "bad-digest":
                references = [etree.fromstring(etree.tostring(r)) for r in inbound.signature.signed_info_references]
                references[0].find(f"{{{ns.DS}}}DigestValue").text = "AAAA" + "A" * 40
                body = sign_receipt(references, inbound.message_id, self.key, now=datetime.now(UTC))
            else:
                body = respond(inbound, self.key, now=datetime.now(UTC)).raw
        return Response(body, status=200, mimetype="application/soap+xml")(environ, start_response)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


@contextmanager
def serve_wsgi(app: Any, port: int = 0) -> Iterator[str]:
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Network:
    gateway: Gateway
    pki: DevPki
    receiver_ap: FakeAccessPoint
    as4_url: str
    smp: SmpServer
    zone: ZoneStore
    token: str
    organisation_id: int
    ap_key: KeyMaterial
    env: dict[str, str]

    def register(self, participant: ParticipantId, doctype: tuple[str, str] = BIS_INVOICE,
                 url: str | None = None) -> None:
        """Publish `participant` in the SML zone with SMP metadata for `doctype` pointing at the fake AP."""
        spec = EndpointSpec(process=BIS_PROCESS, url=url or self.as4_url, certificate=self.ap_key.certificate)
        body = sign(service_information((participant.scheme, participant.value), doctype, [spec]),
                    load_pkcs12(self.pki.smp_p12, self.pki.password))
        self.smp.serve((participant.scheme, participant.value), doctype, body)
        set_records(self.zone, naptr_name(participant, ZONE), [smp_record(self.smp.base)])


def gateway_config(data_dir: Path, dns_port: int, extra: Mapping[str, str] | None = None,
                   **sending: int) -> dict[str, str]:
    env = {
        **rules_env(),
        **(extra or {}),
        "PEPPOL_AP_STORAGE__DATA_DIR": str(data_dir),
        "PEPPOL_AP_SML__ZONE": ZONE,
        "PEPPOL_AP_SML__DNS_SERVERS": f"127.0.0.1:{dns_port}",
        "PEPPOL_AP_SMP_CLIENT__NEGATIVE_CACHE_MINUTES": "0",
        "PEPPOL_AP_LOG__FORMAT": "text",
    }
    defaults = {"retry_initial_seconds": 1, "retry_max_seconds": 2, "connect_timeout_seconds": 2,
                "response_timeout_seconds": 10, "lease_seconds": 30}
    for key, value in {**defaults, **sending}.items():
        env[f"PEPPOL_AP_SENDING__{key.upper()}"] = str(value)
    return env


def seed(gateway: Gateway, participant: ParticipantId = SENDER) -> tuple[int, str]:
    """An organisation owning `participant`, and a network token for it."""
    with gateway.read() as session:
        organisation = Organisation(name="Sender AB", country="SE")
        session.add(organisation)
        session.flush()
        session.add(Participant(organisation_id=organisation.id, scheme=participant.scheme, value=participant.value))
        client, token = ApiClient.issue("erp", ApiRole.NETWORK, organisation.id)
        session.add(client)
        session.flush()
        return organisation.id, token


@contextmanager
def network(tmp_path: Path, env: Mapping[str, str] | None = None, **sending: int) -> Iterator[Network]:
    """A gateway serving SENDER, a fake receiving AP, its SMP and an SML zone; `env` adds configuration
    (PEPPOL_AP_... variables) and `sending` sets [sending] values."""
    pki_dir = tmp_path / "pki"
    pki = ensure_dev_pki(pki_dir)
    leaf = issue_leaf(pki, role="ap", cn="POP000002")
    ap_key = load_pkcs12(leaf.p12, pki.password)
    zone = ZoneStore(tmp_path / "zone.sqlite")
    dns = ZoneServer(ZONE, zone).start()
    data_dir = tmp_path / "gateway"
    data_dir.mkdir()
    shutil.copytree(pki_dir, data_dir / "pki")
    try:
        settings = gateway_config(data_dir, dns.port, env, **sending)
        cfg = load_config(environ=settings)
        gateway = build_gateway(cfg)
        fake = FakeAccessPoint(ap_key, CertificateValidator(pki.anchors()))
        organisation_id, token = seed(gateway)
        with serve_wsgi(fake) as base, SmpServer() as smp:
            yield Network(gateway, pki, fake, f"{base}/as4", smp, zone, token, organisation_id, ap_key,
                          settings)
        gateway.engine.dispose()
    finally:
        dns.stop()
