"""Test SMPs: signed ServiceMetadata built and signed here (signxml, smp-a/smp-b keys), served by a
real http.server on 127.0.0.1 with a random port. Also a NAPTR DNS server process (smp.dnsserver)."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from certs.keystore import KeyMaterial
from smp.lookup import naptr_name
from smp.servicemetadata import BUSDOX_IDS, BUSDOX_SMP, WSA, Identifier
from smp.zonestore import ZoneStore, smp_record
from tests.smp.zones import set_records, set_servfail

ROOT = Path(__file__).resolve().parents[2]
NSMAP = {None: BUSDOX_SMP, "ids": BUSDOX_IDS, "wsa": WSA}


@dataclass(frozen=True)
class EndpointSpec:
    process: tuple[str, str]
    url: str
    certificate: x509.Certificate
    transport_profile: str = "peppol-transport-as4-v2_0"
    activation: datetime | None = None
    expiration: datetime | None = None


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    ns = BUSDOX_IDS if tag.startswith("ids:") else WSA if tag.startswith("wsa:") else BUSDOX_SMP
    el = etree.SubElement(parent, f"{{{ns}}}{tag.split(':')[-1]}", attrs)
    if text is not None:
        el.text = text
    return el


def service_information(participant: tuple[str, str], doctype: tuple[str, str],
                        endpoints: list[EndpointSpec]) -> etree._Element:
    root = etree.Element(f"{{{BUSDOX_SMP}}}SignedServiceMetadata", nsmap=NSMAP)
    info = _sub(_sub(root, "ServiceMetadata"), "ServiceInformation")
    _sub(info, "ids:ParticipantIdentifier", participant[1], scheme=participant[0])
    _sub(info, "ids:DocumentIdentifier", doctype[1], scheme=doctype[0])
    process_list = _sub(info, "ProcessList")
    by_process: dict[tuple[str, str], list[EndpointSpec]] = {}
    for spec in endpoints:
        by_process.setdefault(spec.process, []).append(spec)
    for process, specs in by_process.items():
        proc = _sub(process_list, "Process")
        _sub(proc, "ids:ProcessIdentifier", process[1], scheme=process[0])
        endpoint_list = _sub(proc, "ServiceEndpointList")
        for spec in specs:
            ep = _sub(endpoint_list, "Endpoint", transportProfile=spec.transport_profile)
            _sub(_sub(ep, "wsa:EndpointReference"), "wsa:Address", spec.url)
            _sub(ep, "RequireBusinessLevelSignature", "false")
            if spec.activation:
                _sub(ep, "ServiceActivationDate", spec.activation.isoformat())
            if spec.expiration:
                _sub(ep, "ServiceExpirationDate", spec.expiration.isoformat())
            _sub(ep, "Certificate", base64.b64encode(spec.certificate.public_bytes(Encoding.DER)).decode())
            _sub(ep, "ServiceDescription", "test endpoint")
            _sub(ep, "TechnicalContactUrl", "mailto:ops@example.test")
    return root


def redirect(href: str, certificate_uid: str) -> etree._Element:
    root = etree.Element(f"{{{BUSDOX_SMP}}}SignedServiceMetadata", nsmap=NSMAP)
    red = _sub(_sub(root, "ServiceMetadata"), "Redirect", href=href)
    _sub(red, "CertificateUID", certificate_uid)
    return root


def service_group(participant: tuple[str, str], hrefs: list[str]) -> bytes:
    root = etree.Element(f"{{{BUSDOX_SMP}}}ServiceGroup", nsmap=NSMAP)
    _sub(root, "ids:ParticipantIdentifier", participant[1], scheme=participant[0])
    collection = _sub(root, "ServiceMetadataReferenceCollection")
    for href in hrefs:
        _sub(collection, "ServiceMetadataReference", href=href)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def sign(root: etree._Element, signer: KeyMaterial) -> bytes:
    """Sign like a conformant Peppol SMP: RSA-SHA256, SHA-256, inclusive C14N, one Transform."""
    signer_ = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    signed = signer_.sign(root, key=signer.private_key, cert=[signer.certificate],
                          exclude_c14n_transform_element=True)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


@dataclass
class FakeRoute:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _route_key(path: str) -> str:
    # Participant values are case-insensitive (an SMP must find 0088:ABC registered as 0088:abc);
    # document types are not.
    participant, sep, rest = path[1:].partition("/")
    return "/" + participant.lower() + sep + rest


class SmpServer:
    """An SMP over real HTTP: routes keyed by the percent-DECODED path, so a wrongly encoded
    request (double encoding, unencoded '#') misses and gets 404."""

    def __init__(self) -> None:
        self.routes: dict[str, FakeRoute] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                route = outer.routes.get(_route_key(unquote(self.path)))
                if route is None:
                    route = FakeRoute(404, b"<error>not found</error>")
                self.send_response(route.status)
                self.send_header("Content-Type", "text/xml; charset=UTF-8")
                self.send_header("Content-Length", str(len(route.body)))
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def serve(self, participant: tuple[str, str], doctype: tuple[str, str] | None, body: bytes,
              status: int = 200, headers: dict[str, str] | None = None) -> None:
        path = f"/{participant[0]}::{participant[1]}"
        if doctype is not None:
            path += f"/services/{doctype[0]}::{doctype[1]}"
        self.routes[_route_key(path)] = FakeRoute(status, body, headers or {})

    def __enter__(self) -> SmpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def dns_server(zone: str, store: Path) -> Iterator[int]:
    """`python -m smp.dnsserver` as a separate process; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "smp.dnsserver", "--zone", zone, "--port", "0", "--store", str(store)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"dns server did not start: {line!r}")
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(10)


ZONE = "local.peppol.test"


class World:
    """SML zone file + DNS server process + two SMPs; `register` publishes a participant in the SML."""

    def __init__(self, store: ZoneStore, dns_port: int, smp_a: SmpServer, smp_b: SmpServer) -> None:
        self.store = store
        self.dns_port = dns_port
        self.smp_a = smp_a
        self.smp_b = smp_b

    def register(self, participant: Identifier, smp_uri: str) -> None:
        set_records(self.store, naptr_name(participant, ZONE), [smp_record(smp_uri)])

    def fail_dns(self, participant: Identifier) -> None:
        set_servfail(self.store, naptr_name(participant, ZONE))


@contextmanager
def world(directory: Path) -> Iterator[World]:
    store = ZoneStore(directory / "zone.sqlite")
    try:
        with dns_server(ZONE, store.path) as port, SmpServer() as a, SmpServer() as b:
            yield World(store, port, a, b)
    finally:
        store.close()
