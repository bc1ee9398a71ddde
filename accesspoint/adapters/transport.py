"""HTTP transport to receiving access points: pooled connections, time-outs, a circuit breaker per endpoint.

One requests Session per receiving endpoint (scheme, host, port), so the TCP/TLS connection is reused from one
message to the next (Oxalis-AS4 #116: sequential sends without reuse degrade to seconds each). The body is
streamed from the built message with a Content-Length (the ciphertext is never joined in memory). The answer is
read whatever the HTTP status: Oxalis sends ebMS errors with HTTP 500 and phase4 some failures as 400 text/plain
(shared/docs/as4.md pitfall 9), so the status alone decides nothing here.

The circuit breaker (phoss-ap's defaults: 5 failures in a row open it for 1 minute, then it lets a probe through)
counts only failures that say the endpoint itself is unwell: no connection, a time-out, HTTP 5xx without an ebMS
answer. A rejection of one message (an ebMS error) is a healthy endpoint speaking. Connections and breakers live in
the worker process: each worker judges an endpoint on its own experience, so no shared state can go stale.

The endpoint URL is the receiver's SMP's choice, so connections go through the egress policy (base.egress): an
endpoint on loopback or a private network gets nothing outside `egress.allow` and the local environment. Plain
http stays possible, as phase4 accepts it (its Peppol PMode validator allows http and https endpoints).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from base.bounded import TooLarge, TooSlow, connection_reason, read_bounded
from base.egress import EgressPolicy, EgressRefused
from base.egress_http import EgressAdapter

# A signal (receipt or error) is a few kB; anything near this cap is not an AS4 answer.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
POOL_CONNECTIONS = 4
USER_AGENT = "peppol-ap"


class TransportError(Exception):
    """The message did not get an HTTP answer. `kind`: "connection", "timeout", "circuit-open", "response"
    (the answer broke off or was too large) or "refused" (the egress policy forbids the endpoint's address).
    `reached_peer` is False when nothing was sent at all."""

    def __init__(self, kind: str, message: str, *, reached_peer: bool = True, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.reached_peer = reached_peer
        self.retry_at = retry_at  # monotonic time the circuit closes again (circuit-open only)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    content_type: str
    body: bytes
    elapsed_seconds: float


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


@dataclass
class CircuitBreaker:
    """Per-endpoint breaker: `threshold` failures in a row open it for `open_seconds`; then one call probes."""

    threshold: int
    open_seconds: float
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, _Circuit] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def before_call(self, endpoint: str) -> None:
        """Raise TransportError("circuit-open") when `endpoint` must not be called now."""
        with self._lock:
            circuit = self._circuits.setdefault(endpoint, _Circuit())
            if circuit.failures < self.threshold:
                return
            now = self.clock()
            if now < circuit.open_until or circuit.probing:
                retry_at = max(circuit.open_until, now + 1.0)
                raise TransportError(
                    "circuit-open",
                    f"{endpoint} failed {circuit.failures} times in a row; not contacted again before the circuit "
                    f"breaker closes in {max(0.0, circuit.open_until - now):.0f} s",
                    reached_peer=False, retry_at=retry_at,
                )
            circuit.probing = True  # half-open: this call is the probe, others wait for its outcome

    def record(self, endpoint: str, healthy: bool) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(endpoint, _Circuit())
            circuit.probing = False
            if healthy:
                circuit.failures = 0
                circuit.open_until = 0.0
                return
            circuit.failures += 1
            if circuit.failures >= self.threshold:
                circuit.open_until = self.clock() + self.open_seconds


class _SizedBody:
    """An iterable body with a known length: requests then sends Content-Length instead of chunked encoding."""

    def __init__(self, chunks: Iterable[bytes], length: int) -> None:
        self._chunks = chunks
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


def endpoint_key(url: str) -> str:
    """What connections and the breaker are kept per: scheme://host:port of the endpoint URL."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class Transport:
    """POSTs AS4 messages; safe to share between threads of one process."""

    def __init__(self, egress: EgressPolicy, *, connect_timeout: float = 5.0, response_timeout: float = 120.0,
                 breaker: CircuitBreaker | None = None, max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.egress = egress
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.breaker = breaker or CircuitBreaker(threshold=5, open_seconds=60.0)
        self.max_response_bytes = max_response_bytes
        self._sessions: dict[str, requests.Session] = {}
        self._lock = threading.Lock()

    def _session(self, key: str) -> requests.Session:
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = requests.Session()
                # the receiving AP's URL comes from a signed SMP answer; never follow a redirect elsewhere and
                # never pick up proxies or credentials from the environment of the worker
                session.trust_env = False
                session.max_redirects = 0
                adapter = EgressAdapter(self.egress, plain_http=True, pool_connections=1,
                                        pool_maxsize=POOL_CONNECTIONS)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers["User-Agent"] = USER_AGENT
                self._sessions[key] = session
            return session

    def post(self, url: str, content_type: str, chunks: Iterable[bytes], length: int) -> HttpAnswer:
        """POST the body and read the whole answer (any status); TransportError when there is no answer."""
        key = endpoint_key(url)
        self.breaker.before_call(key)
        started = time.monotonic()
        try:
            answer = self._post(key, url, content_type, chunks, length, started)
        except TransportError:
            self.breaker.record(key, healthy=False)
            raise
        # A 5xx counts against the endpoint until the caller finds an ebMS signal in it (`mark_healthy`).
        self.breaker.record(key, healthy=answer.status < 500)
        return answer

    def mark_healthy(self, url: str) -> None:
        """The answer, whatever its status, was a proper AS4 signal: the endpoint works (Oxalis errors are 500)."""
        self.breaker.record(endpoint_key(url), healthy=True)

    def _post(self, key: str, url: str, content_type: str, chunks: Iterable[bytes], length: int,
              started: float) -> HttpAnswer:
        headers = {"Content-Type": content_type, "MIME-Version": "1.0", "Accept": "*/*"}
        try:
            response = self._session(key).post(
                url, data=_SizedBody(chunks, length), headers=headers, stream=True, allow_redirects=False,
                timeout=(self.connect_timeout, self.response_timeout),
            )
        except EgressRefused as exc:
            raise TransportError("refused", f"{url} is not contacted: {exc.reason}", reached_peer=False) from None
        except requests.ConnectTimeout as exc:
            raise TransportError("timeout", f"no connection to {url} within {self.connect_timeout:g} s",
                                 reached_peer=False) from exc
        except requests.ReadTimeout as exc:
            raise TransportError("timeout", f"{url} did not answer within {self.response_timeout:g} s") from exc
        except requests.ConnectionError as exc:
            raise TransportError("connection", f"cannot reach {url}: {connection_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise TransportError("connection", f"request to {url} failed: {connection_reason(exc)}") from exc
        try:
            body = self._read(response, url, started)
        finally:
            response.close()
        return HttpAnswer(response.status_code, response.headers.get("Content-Type", ""), body,
                          time.monotonic() - started)

    def _read(self, response: requests.Response, url: str, started: float) -> bytes:
        try:
            return read_bounded(response.iter_content(64 * 1024), self.max_response_bytes,
                                deadline=started + self.response_timeout)
        except TooLarge:
            raise TransportError("response", f"the answer of {url} exceeds {self.max_response_bytes} bytes; an AS4 "
                                             "receipt or error is a few kilobytes") from None
        except TooSlow:
            raise TransportError("timeout", f"{url} did not finish its answer within {self.response_timeout:g} s") \
                from None
        except requests.RequestException as exc:
            raise TransportError("response", f"the answer of {url} broke off: {connection_reason(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()

