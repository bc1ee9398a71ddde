"""base.egress and base.egress_http: which URLs and addresses the gateway connects to on someone else's behalf, every
spelling of an internal address, the allow-list, the local environment's loopback, and real connections that use
the checked address while TLS still verifies the host name."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from accesspoint.config import ConfigError, egress_policy, load_config
from base.egress import EgressPolicy, EgressRefused, address_problem, parse_allow
from base.egress_http import egress_session

STRICT = EgressPolicy()
LOCAL = EgressPolicy.from_settings([], local=True)

REFUSED_URLS = [
    # literal internal addresses, in every spelling the C resolver reads
    ("https://127.0.0.1/", "loopback"),
    ("https://2130706433/", "non-standard spelling of the IP address 127.0.0.1 (loopback)"),
    ("https://0x7f000001/", "non-standard spelling of the IP address 127.0.0.1 (loopback)"),
    ("https://0177.0.0.1/", "non-standard spelling of the IP address 127.0.0.1 (loopback)"),
    ("https://017700000001/", "non-standard spelling of the IP address 127.0.0.1 (loopback)"),
    ("https://127.1/", "non-standard spelling of the IP address 127.0.0.1 (loopback)"),
    ("https://0x7f.1/", "non-standard spelling of the IP address 127.0.0.1 (loopback)"),
    ("https://0/", "non-standard spelling of the IP address 0.0.0.0"),
    ("https://010.0.0.1/", "non-standard spelling of the IP address 8.0.0.1"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://[::1]/", "loopback"),
    ("https://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "loopback, IPv4 127.0.0.1 embedded in IPv6"),
    ("https://[::ffff:7f00:1]/", "loopback, IPv4 127.0.0.1 embedded in IPv6"),
    ("https://[::ffff:a9fe:a9fe]/", "cloud metadata service"),
    ("https://[::127.0.0.1]/", "IPv4-compatible"),
    ("https://[64:ff9b::a9fe:a9fe]/", "cloud metadata service"),
    ("https://[64:ff9b::10.0.0.1]/", "private, IPv4 10.0.0.1 embedded in IPv6"),
    ("https://[2002:7f00:1::]/", "loopback, IPv4 127.0.0.1 embedded in IPv6"),
    ("https://[2002:c0a8:101::1]/", "private, IPv4 192.168.1.1 embedded in IPv6"),
    ("https://[2001::1]/", "Teredo"),
    ("https://169.254.169.254/latest/meta-data/", "link-local (the cloud metadata service)"),
    ("https://169.254.10.1/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fe80::1%25eth0]/", "link-local"),
    ("https://10.1.2.3/", "private"),
    ("https://172.16.0.1/", "private"),
    ("https://172.31.255.255/", "private"),
    ("https://192.168.0.10:8443/", "private"),
    ("https://[fd00::1]/", "private (unique local)"),
    ("https://[fec0::1]/", "site-local"),
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://100.127.255.254/", "carrier-grade NAT"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://255.255.255.255/", "broadcast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://192.0.0.8/", "reserved (IETF protocol assignments)"),
    ("https://192.0.2.1/", "documentation"),
    ("https://[2001:db8::1]/", "documentation"),
    ("https://198.18.0.1/", "benchmarking"),
    # loopback names
    ("https://localhost/", "loopback name"),
    ("https://LOCALHOST./", "loopback name"),
    ("https://admin.localhost/", "loopback name"),
    # the URL's form
    ("http://hooks.example.com/", "only https URLs are accepted (plain http only in the local environment)"),
    ("ftp://hooks.example.com/", "the scheme must be https, not 'ftp'"),
    ("//hooks.example.com/", "not absolute"),
    ("https://user@hooks.example.com/", "user information"),
    ("https://user:pass@hooks.example.com/", "user information"),
    ("https://hooks.example.com@127.0.0.1/", "user information"),
    ("https://hooks.example.com\\@127.0.0.1/", "user information"),
    ("https://hooks.example.com/a b", "control character or whitespace"),
    ("https://hooks.example.com/\r\nX-Injected: 1", "control character or whitespace"),
    ("https://hooks.example.com/\x00", "control character or whitespace"),
    ("https://hooks.example.com/\t", "control character or whitespace"),
    ("https://hooks.example.com/\x7f", "control character or whitespace"),
    ("https://hooks.example.com/\u00a0", "control character or whitespace"),
    ("https://hooks.exämple.com/", "xn--"),
    ("https:///nohost", "no host"),
    ("https://hooks.example.com:0/", "port 0"),
    ("https://hooks.example.com:99999/", "malformed"),
    ("https://[not-v6]/", "malformed"),
    ("https://exa..mple.com/", "not a valid host name"),
    ("https://-bad-.example.com/", "not a valid host name"),
    ("https://example.123/", "not a valid host name"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_refused_urls_name_the_reason(url: str, reason: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        STRICT.check_url(url)
    assert reason in refused.value.reason


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/peppol?x=1",
    "https://HOOKS.example.com:8443/in",
    "https://hooks.example.com./",
    "https://8.8.8.8/",
    "https://[2606:4700:4700::1111]/",
    "https://[64:ff9b::808:808]/",      # NAT64 of a public address
    "https://[::ffff:8.8.8.8]/",
    "https://xn--exmple-cua.com/",
])
def test_public_urls_pass(url: str) -> None:
    assert STRICT.check_url(url)


def test_plain_http_where_the_protocol_needs_it_and_in_local() -> None:
    assert STRICT.check_url("http://crl.one.nl.digicert.com/x.crl", plain_http=True) == "crl.one.nl.digicert.com"
    assert LOCAL.check_url("http://hooks.example.com/") == "hooks.example.com"
    with pytest.raises(EgressRefused, match="only https"):
        STRICT.check_url("http://hooks.example.com/")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/as4", "https://[::1]/", "http://localhost:9/",
                                 "https://[::ffff:127.0.0.1]/"])
def test_the_local_environment_permits_loopback(url: str) -> None:
    assert LOCAL.check_url(url)
    with pytest.raises(EgressRefused):
        STRICT.check_url(url)


@pytest.mark.parametrize("url", ["https://10.0.0.1/", "https://169.254.169.254/", "https://[fd00::1]/",
                                 "https://2130706433/"])
def test_the_local_environment_still_refuses_other_internal_addresses(url: str) -> None:
    with pytest.raises(EgressRefused):
        LOCAL.check_url(url)


def test_the_allow_list_lets_chosen_networks_and_names_through() -> None:
    policy = EgressPolicy.from_settings(["10.20.0.0/16", "fd00:1::/32", "Hooks.Corp.Example."], local=False)
    assert policy.check_url("https://10.20.3.4/in") == "10.20.3.4"
    assert policy.check_url("https://[fd00:1::5]/in") == "fd00:1::5"
    policy.check_address(ipaddress.ip_address("10.99.0.1"), "hooks.corp.example")
    with pytest.raises(EgressRefused, match="private"):
        policy.check_url("https://10.21.0.1/")
    with pytest.raises(EgressRefused, match="private"):
        policy.check_address(ipaddress.ip_address("10.99.0.1"), "other.corp.example")
    # the allow-list opens addresses, not the form rules
    with pytest.raises(EgressRefused, match="user information"):
        policy.check_url("https://u@10.20.3.4/")
    with pytest.raises(EgressRefused, match="only https"):
        policy.check_url("http://10.20.3.4/")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host", "0x7f000001", "", "a..b"])
def test_allow_list_entries_must_be_networks_or_names(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a CIDR network"):
        parse_allow([entry])


def test_the_allow_list_setting_is_checked_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"^egress\.allow: '10\.0\.0\.0/33' is neither a CIDR network .*"
                                          r"\(in PEPPOL_AP_EGRESS__ALLOW\)$"):
        load_config(None, {"PEPPOL_AP_EGRESS__ALLOW": "10.0.0.0/33"})
    cfg = load_config(None, {"PEPPOL_AP_EGRESS__ALLOW": "10.20.0.0/16, hooks.corp.example"})
    local = egress_policy(cfg)
    assert local.loopback and local.plain_http and local.allow_hosts == {"hooks.corp.example"}
    assert local.allow_networks == (ipaddress.ip_network("10.20.0.0/16"),)
    # the same settings looked at for another environment (the CLI's --env) permit no loopback
    production = egress_policy(cfg, "production")
    assert not production.loopback and not production.plain_http and production.allow_hosts == local.allow_hosts


def test_address_problem_covers_what_ipaddress_misses() -> None:
    # Python's flags call these global
    for text in ("64:ff9b::7f00:1", "192.0.0.8", "2002:7f00:1::", "fec0::1", "::127.0.0.1"):
        assert address_problem(ipaddress.ip_address(text)) is not None, text
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None


# --- resolution: every address, at connection time ----------------------------------------------------------

def test_a_name_is_refused_when_any_of_its_addresses_is_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system resolver cannot be pointed at a test zone, so the answer of a name with one public and one
    private address is given here; the real resolver is used for localhost below."""
    answer = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
              (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_args, **_kwargs: answer)
    with pytest.raises(EgressRefused, match=r"hooks\.example\.com \(10\.0\.0\.7\) is not a public address: private"):
        STRICT.resolve("hooks.example.com", 443)


def test_localhost_resolves_and_is_refused_outside_local() -> None:
    with pytest.raises(EgressRefused, match="loopback"):
        STRICT.resolve("localhost", 80)
    assert all(ip.is_loopback for ip in LOCAL.resolve("localhost", 80))


class _Server:
    """HTTP or HTTPS on 127.0.0.1 answering 200 "hello" to GET."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"hello")

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server() -> Iterator[_Server]:
    server = _Server()
    yield server
    server.close()


def _localhost_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the DNS name localhost only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "localhost.pem", directory / "localhost.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_a_session_resolves_once_and_connects_to_the_checked_address(http_server: _Server,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []
    real = socket.getaddrinfo

    def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    with egress_session(LOCAL) as session:
        response = session.get(f"http://localhost:{http_server.port}/", timeout=5)
    assert response.status_code == 200 and response.content == b"hello"
    # the name is looked up once, by the policy; the socket is opened to the checked address (an IP literal)
    assert lookups.count("localhost") == 1
    assert all(host == "localhost" or ipaddress.ip_address(host).is_loopback for host in lookups)


def test_a_session_outside_local_refuses_loopback_before_connecting(http_server: _Server) -> None:
    with egress_session(EgressPolicy(plain_http=True)) as session:
        for url in (f"http://localhost:{http_server.port}/", f"http://127.0.0.1:{http_server.port}/",
                    f"http://2130706433:{http_server.port}/", f"http://[::ffff:127.0.0.1]:{http_server.port}/"):
            with pytest.raises(EgressRefused):
                session.get(url, timeout=5)
    assert http_server.hits == 0
    allowed = EgressPolicy.from_settings(["127.0.0.0/8"], local=False)
    with egress_session(allowed, plain_http=True) as session:
        assert session.get(f"http://127.0.0.1:{http_server.port}/", timeout=5).status_code == 200
    assert http_server.hits == 1


def test_tls_still_verifies_the_host_name(tmp_path: Path) -> None:
    cert, key = _localhost_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _Server(context)
    try:
        with egress_session(LOCAL) as session:
            response = session.get(f"https://localhost:{server.port}/", timeout=5, verify=str(cert))
            assert response.status_code == 200
            # the same server by address: its certificate names localhost only, and the check is against the URL's
            # host, not the address connected to
            with pytest.raises(requests.exceptions.SSLError):
                session.get(f"https://127.0.0.1:{server.port}/", timeout=5, verify=str(cert))
    finally:
        server.close()


def test_a_session_never_follows_redirects(http_server: _Server) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{http_server.port}/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=redirector.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with egress_session(LOCAL) as session:
            # even when the caller forgets allow_redirects=False
            response = session.get(f"http://127.0.0.1:{redirector.server_address[1]}/", timeout=5)
        assert response.status_code == 302
    finally:
        redirector.shutdown()
        redirector.server_close()
    assert http_server.hits == 0
