"""Helpers for the registration tests (SMP server, SML, Directory): the generated test PKI, XSD
validators over the vector schemas, semantic XML comparison, a recording HTTP server and the
local SML as a real process."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from lxml import etree

from tests.conftest import VECTORS

ROOT = Path(__file__).resolve().parents[2]
SMP_VECTORS = VECTORS / "smp"
PKI = SMP_VECTORS / "generated" / "pki"
SCHEMAS = SMP_VECTORS / "schemas"
LOCAL_ZONE = "local.peppol.test"


# --- XML ---------------------------------------------------------------------------------------------


def _schema(imports: list[tuple[str, str]]) -> etree.XMLSchema:
    # The vector XSDs import without schemaLocation; a small driver schema supplies the locations.
    driver = ['<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">']
    driver += [f'<xs:import namespace="{ns}" schemaLocation="{(SCHEMAS / name).as_uri()}"/>' for ns, name in imports]
    driver.append("</xs:schema>")
    parser = etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.fromstring("".join(driver).encode(), parser, base_url=SCHEMAS.as_uri() + "/"))


@cache
def smp_schema() -> etree.XMLSchema:
    return _schema([
        ("http://www.w3.org/2000/09/xmldsig#", "xmldsig-core-schema.xsd"),
        ("http://busdox.org/transport/identifiers/1.0/", "peppol-identifiers-v1.xsd"),
        ("http://www.w3.org/2005/08/addressing", "ws-addr.xsd"),
        ("http://busdox.org/serviceMetadata/publishing/1.0/", "peppol-smp-types-v1-ext.xsd"),
    ])


@cache
def business_card_schema() -> etree.XMLSchema:
    return _schema([("http://www.peppol.eu/schema/pd/businesscard/20180621/",
                     "peppol-directory-business-card-20180621.xsd")])


@cache
def sml_schema() -> etree.XMLSchema:
    return _schema([
        ("http://busdox.org/transport/identifiers/1.0/", "peppol-identifiers-v1.xsd"),
        ("http://busdox.org/serviceMetadata/locator/1.0/", "peppol-sml-types-v1.xsd"),
    ])


def assert_valid(schema: etree.XMLSchema, element: etree._Element) -> None:
    if not schema.validate(element):
        raise AssertionError("XSD validation failed: " + "; ".join(str(e) for e in schema.error_log))


def semantic(data: bytes) -> bytes:
    """Canonical form without comments and whitespace-only text: what a SOAP receiver sees."""
    root = etree.fromstring(data, etree.XMLParser(remove_blank_text=True, remove_comments=True))
    for el in root.iter():
        if isinstance(el.tag, str) and el.text is not None and not el.text.strip():
            el.text = None
    return etree.tostring(root, method="c14n")


def soap_action_of_vector(path: Path) -> str:
    """The SOAPAction written in a vector's leading comment."""
    match = re.search(r'SOAPAction "([^"]+)"', path.read_text(encoding="utf-8"))
    if match is None:
        raise AssertionError(f"{path.name} names no SOAPAction")
    return match.group(1)


# --- certificates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str | None
    detail: str


class PkiValidator:
    """Issuer must be the generated test SMP (or AP) CA, signature and validity checked: enough for
    a Discovery client to accept our SMP's answers in these tests."""

    def __init__(self) -> None:
        self.smp_ca = x509.load_pem_x509_certificate((PKI / "test-smp-ca.cert.pem").read_bytes())
        self.ap_ca = x509.load_pem_x509_certificate((PKI / "test-ap-ca.cert.pem").read_bytes())

    def validate(self, cert: x509.Certificate, purpose: object, at: datetime | None = None) -> Verdict:
        ca = self.smp_ca if "smp" in str(purpose) else self.ap_ca
        if cert.issuer != ca.subject:
            return Verdict(False, "unsupported-issuer", f"issuer {cert.issuer.rfc4514_string()} is not trusted")
        try:
            cert.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError):
            return Verdict(False, "bad-signature", "not signed by the test CA")
        if at is not None and not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            return Verdict(False, "expired", "outside validity")
        return Verdict(True, None, "issued by the test CA")


# --- a recording HTTP server -------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CaptureServer:
    """Real HTTP on 127.0.0.1:<random>; records every request and answers with `reply(request)`."""

    reply: Callable[[Recorded], tuple[int, bytes, str]] = lambda r: (204, b"", "text/plain")
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                rec = Recorded(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                outer.requests.append(rec)
                status, body, content_type = outer.reply(rec)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the local SML as a process ----------------------------------------------------------------------


@dataclass(frozen=True)
class LocalSmlProcess:
    url: str
    dns_port: int
    store: Path


@contextmanager
def local_sml_process(directory: Path, zone: str = LOCAL_ZONE) -> Iterator[LocalSmlProcess]:
    """`python -m smp.localsml` with its DNS server child, both on random ports."""
    store = directory / "sml.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smp.localsml", "--port", "0", "--store", str(store),
         "--dns-port", "0", "--zone", zone],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout is not None
        sml_line = proc.stdout.readline().strip()
        dns_line = proc.stdout.readline().strip()
        if not sml_line.startswith("sml listening on ") or not dns_line.startswith("dns listening on "):
            raise RuntimeError(f"local SML did not start: {sml_line!r} {dns_line!r}")
        yield LocalSmlProcess(sml_line.removeprefix("sml listening on "), int(dns_line.rsplit(":", 1)[1]),
                              store)
    finally:
        proc.terminate()
        proc.wait(10)
