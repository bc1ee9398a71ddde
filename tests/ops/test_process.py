"""The gateway as its own process (gunicorn via `serve`): /metrics over real HTTP, and `worker --once` sweeping an
orphaned blob next to a stored message."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography import x509

from accesspoint.config import load_config
from accesspoint.core.peppol.outbound import build_message
from accesspoint.gateway import build_gateway
from accesspoint.store.models import Message
from tests.e2e.gateway_process import ROOT, GatewayProcess
from tests.ops.helpers import value

NOW = datetime.now(UTC)  # the tests' time for what they build

pytestmark = pytest.mark.integration


@pytest.fixture
def process(tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(tmp_path / "data")
    gateway.prepare()
    gateway.start()
    yield gateway
    gateway.stop()


def test_metrics_over_http_and_worker_sweep(process: GatewayProcess, sbd: bytes) -> None:
    sender = process.sender()[0]
    certificate = x509.load_pem_x509_certificate(process.certificate_pem.read_bytes())
    message = build_message(sbd=sbd, our_key=sender, recipient_cert=certificate, domain="sender.example", now=NOW)
    with message:
        response = requests.post(process.as4_url, data=b"".join(message.chunks()),
                                 headers={"Content-Type": message.content_type}, timeout=60)
    assert response.status_code == 200, response.text[:300]
    scraped = requests.get(f"{process.url}/metrics", timeout=10)
    assert scraped.status_code == 200 and scraped.headers["Content-Type"].startswith("text/plain")
    assert value(scraped.text, "peppol_ap_as4_requests_total", outcome="accepted", error_code="") == 1
    assert value(scraped.text, "peppol_ap_as4_request_seconds_count") == 1

    store = build_gateway(load_config(None, process.env), migrate=False)
    try:
        with store.read() as session:
            [stored] = session.query(Message).all()
            assert value(scraped.text, "peppol_ap_messages", direction="inbound", state=stored.state) == 1
            blob_key = stored.blob_key
        assert blob_key is not None
        # what a kill between the blob write and the commit leaves, two hours ago; the stored blob is as old
        orphan = store.blobs.put(io.BytesIO(b"orphaned payload")).key
        then = time.time() - 7200
        for key in (orphan, blob_key):
            os.utime(store.blobs.path(key), (then, then))
        env = {**os.environ, **process.env, "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-m", "accesspoint.cli.main", "worker", "--once"], cwd=ROOT, env=env,
                             capture_output=True, timeout=120)
        assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
        assert not store.blobs.exists(orphan)
        with store.blobs.open(blob_key) as blob:
            assert blob.read() == sbd
    finally:
        store.engine.dispose()


def test_access_log_under_gunicorn_is_the_apps_json(process: GatewayProcess) -> None:
    response = requests.get(f"{process.url}/health", headers={"X-Request-Id": "probe-1"}, timeout=10)
    assert response.headers["X-Request-Id"] == "probe-1"
    deadline = time.monotonic() + 10
    while True:
        tail = process.log_tail()
        lines = [json.loads(line) for line in tail.splitlines() if line.startswith("{")]
        access = [line for line in lines if line.get("logger") == "accesspoint.access"
                  and line.get("request_id") == "probe-1"]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    [line] = access
    assert line["method"] == "GET" and line["path"] == "/health" and line["status"] == response.status_code
    assert line["size"] == len(response.content) and line["remote_addr"] == "127.0.0.1"
    assert "GET /health HTTP/1.1" not in tail  # gunicorn's own access log is off
