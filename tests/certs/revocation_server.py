"""A real CRL + OCSP server on 127.0.0.1 for the revocation tests, built on http.server and
cryptography's CRL and OCSP response builders."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

Responder = Callable[[bytes], bytes]


def make_crl(
    ca: x509.Certificate,
    key: rsa.RSAPrivateKey,
    revoked: dict[int, datetime] | None = None,
    this_update: datetime | None = None,
    next_update: datetime | None = None,
) -> bytes:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(this_update or now - timedelta(minutes=5))
        .next_update(next_update or now + timedelta(days=1))
    )
    for serial, when in (revoked or {}).items():
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class OcspResponder:
    """Answers OCSP requests for certificates of `ca`: good unless listed in `revoked` or `unknown`."""

    ca: x509.Certificate
    ca_key: rsa.RSAPrivateKey
    revoked: dict[int, datetime] = field(default_factory=dict)
    unknown: set[int] = field(default_factory=set)
    this_update: datetime | None = None
    next_update: datetime | None = None
    signer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None

    def __call__(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        now = datetime.now(UTC)
        serial = request.serial_number
        if serial in self.unknown:
            status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif serial in self.revoked:
            status, revoked_at, reason = ocsp.OCSPCertStatus.REVOKED, self.revoked[serial], x509.ReasonFlags.superseded
        else:
            status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        signer_cert, signer_key = self.signer or (self.ca, self.ca_key)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=serial,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=self.this_update or now - timedelta(minutes=1),
            next_update=self.next_update or now + timedelta(hours=12),
            revocation_time=revoked_at,
            revocation_reason=reason,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        if self.signer:
            builder = builder.certificates([signer_cert])
        return builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class RevocationServer:
    """Serves `crls[name]` at GET /crl/<name> and `ocsp[name]` at POST /ocsp/<name>; counts hits per path."""

    def __init__(self) -> None:
        self.crls: dict[str, bytes] = {}
        self.ocsp: dict[str, Responder | bytes] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                name = self.path.removeprefix("/crl/")
                self._answer(server.crls.get(name) if self.path.startswith("/crl/") else None, "application/pkix-crl")

            def do_POST(self) -> None:
                server.hits[self.path] += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                responder = server.ocsp.get(self.path.removeprefix("/ocsp/"))
                if self.headers.get("Content-Type") != "application/ocsp-request" or responder is None:
                    self._answer(None, "")
                    return
                self._answer(responder if isinstance(responder, bytes) else responder(body),
                             "application/ocsp-response")

            def _answer(self, data: bytes | None, content_type: str) -> None:
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # keep test output free of access logs
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def crl_url(self, name: str) -> str:
        return f"{self.base}/crl/{name}"

    def ocsp_url(self, name: str) -> str:
        return f"{self.base}/ocsp/{name}"

    def __enter__(self) -> RevocationServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def closed_port_url(path: str) -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
