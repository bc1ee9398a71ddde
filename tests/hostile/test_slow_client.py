"""Slow and stalled clients against a real gateway process (gunicorn, one worker process, its default threads):
each holds one request slot for at most `server.read_timeout_seconds` without a byte, or
`server.body_timeout_seconds` in all, then gets 408; meanwhile /health and AS4 keep answering, and nothing of the
cut-off requests is stored."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.gateway_process import GatewayProcess
from tests.hostile.process_support import stored, valid_message_is_receipted

pytestmark = pytest.mark.integration

IDLE, TOTAL = 2.0, 6.0
STALLED = 4  # fewer than the threads of the one worker process, so each costs one slot and /health has others


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayProcess:
    process = GatewayProcess(tmp_path_factory.mktemp("slow") / "data", settings={
        "PEPPOL_AP_SERVER__READ_TIMEOUT_SECONDS": str(IDLE), "PEPPOL_AP_SERVER__BODY_TIMEOUT_SECONDS": str(TOTAL)})
    process.prepare()
    process.start()
    yield process
    process.stop()


def _begin(gateway: GatewayProcess, declared: int = 100_000) -> socket.socket:
    """A POST /as4 whose headers and first bytes arrive, and then nothing more unless the test sends it."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    sock.sendall(f"POST /as4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/related; boundary=b; "
                 f"type=\"application/soap+xml\"\r\nContent-Length: {declared}\r\n\r\n--b\r\n".encode())
    return sock


def _status(sock: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    sock.close()
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def test_stalled_bodies_are_cut_off_while_health_and_as4_keep_answering(gateway: GatewayProcess,
                                                                         vectors: Path) -> None:
    before = stored(gateway)[0]
    started = time.monotonic()
    stalled = [_begin(gateway) for _ in range(STALLED)]
    time.sleep(0.3)  # the requests are in their threads, each blocked reading its body
    slowest = 0.0
    while time.monotonic() - started < IDLE - 0.5:
        asked = time.monotonic()
        assert requests.get(f"{gateway.url}/health", timeout=5).status_code == 200
        slowest = max(slowest, time.monotonic() - asked)
    assert slowest < 1.0, f"/health took {slowest:.2f} s while {STALLED} bodies stalled"
    valid_message_is_receipted(gateway, vectors)  # AS4 answers meanwhile too
    statuses = [_status(sock) for sock in stalled]
    waited = time.monotonic() - started
    assert statuses == [408] * STALLED
    assert IDLE - 0.5 < waited < IDLE + 4, f"cut off after {waited:.1f} s, read timeout {IDLE} s"
    assert stored(gateway)[0] == before + 1  # only the valid message


def test_a_trickling_body_is_cut_off_at_the_whole_body_limit(gateway: GatewayProcess, vectors: Path) -> None:
    before = stored(gateway)[0]
    sock = _begin(gateway)
    stop = threading.Event()

    def trickle() -> None:  # one byte well inside the idle limit, forever: only the whole-body limit ends it
        while not stop.wait(IDLE / 4):
            try:
                sock.sendall(b"x")
            except OSError:
                return

    started = time.monotonic()
    threading.Thread(target=trickle, daemon=True).start()
    try:
        status = _status(sock)
    finally:
        stop.set()
    waited = time.monotonic() - started
    assert status == 408
    assert TOTAL - 0.5 < waited < TOTAL + 4, f"cut off after {waited:.1f} s, body limit {TOTAL} s"
    assert stored(gateway)[0] == before
    valid_message_is_receipted(gateway, vectors)
