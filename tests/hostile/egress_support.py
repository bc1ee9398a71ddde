"""What the URL hostile-input tests share: gateways in the test environment (where loopback is refused, as in
production), and HTTPS webhook receivers on 127.0.0.1 that record what reaches them."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from accesspoint.config import load_config
from accesspoint.gateway import Gateway, build_gateway
from certs.devpki import DEFAULT_PASSWORD
from tests.registrations.tls_support import self_signed_server
from tests.web.conftest import gateway_env


def make_gateway(data: Path, dev_pki: Path, database_url: str, environment: str = "test",
                 **settings: str) -> Gateway:
    """A gateway on a fresh database: `environment` "test" uses the dev PKI's AP key as its keystore (the Peppol test
    CAs stay its trust anchors); `settings` are extra PEPPOL_AP_* variables by their suffix (egress__allow=...)."""
    env = gateway_env(data, dev_pki, database_url)
    env["PEPPOL_AP_ENVIRONMENT"] = environment
    if environment != "local":
        env["PEPPOL_AP_KEYSTORE__PKCS12"] = str(data / "pki" / "ap.p12")
        env["PEPPOL_AP_KEYSTORE__PASSWORD"] = DEFAULT_PASSWORD
    env.update({f"PEPPOL_AP_{key.upper()}": value for key, value in settings.items()})
    return build_gateway(load_config(None, env))


class TlsReceiver:
    """An HTTPS webhook consumer on 127.0.0.1 (certificate for 127.0.0.1): answers each POST with `answer()`'s
    (status, headers, body) and records (headers, body) of every request."""

    def __init__(self, certificate: tuple[Path, Path],
                 answer: Callable[[dict[str, str], bytes], tuple[int, dict[str, str], bytes]] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self
        reply = answer or (lambda _headers, _body: (200, {}, b"ok"))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers)
                outer.requests.append((headers, body))
                status, extra, payload = reply(headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                return

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """One certificate for every receiver of a test, trusted by the gateway's HTTP clients as an operator would
    (REQUESTS_CA_BUNDLE)."""
    directory = tmp_path / "receiver-tls"
    directory.mkdir()
    cert, key = self_signed_server(directory)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    return cert, key
