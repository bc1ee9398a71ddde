"""`peppol-ap serve --workers 2` on PostgreSQL: forked workers must not share the master's pooled connection
(accesspoint/server.py post_fork). Concurrent sends to both workers are all receipted and stored once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from accesspoint.config import load_config
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.outbound import build_message
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.gateway import build_gateway
from accesspoint.store.models import Message
from certs.keystore import load_pem
from tests.e2e.gateway_process import GatewayProcess

NOW = datetime.now(UTC)  # the tests' time for what they build

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql(database_url: str, tmp_path: Path, vectors: Path) -> None:
    process = GatewayProcess(tmp_path / "data", workers=2, database_url=database_url)
    process.prepare()
    sender = process.sender()[0]
    recipient = load_pem(process.pki.ap_key, process.pki.ap_cert).certificate
    invoice = (vectors / "bis" / "base-example.xml").read_bytes()
    process.start()
    try:
        deadline = time.monotonic() + 30  # /health answers as soon as the first worker is up
        while len(process.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(process.worker_pids()) == 2

        def send(_: int) -> bool:
            sbd = build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=datetime.now(UTC)), invoice)
            with build_message(sbd=sbd, our_key=sender, recipient_cert=recipient, domain="sender.example",
                               now=NOW) as msg:
                response = requests.post(process.as4_url, data=b"".join(msg.chunks()), timeout=60,
                                         headers={"Content-Type": msg.content_type})
                return verify_receipt(response.content, sent_message_id=msg.message_id,
                                      sent_references=msg.sent_references).valid

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(send, range(24)))
        health = [requests.get(f"{process.url}/health", timeout=30).status_code for _ in range(20)]
    finally:
        process.stop()
    assert all(results), f"{results.count(False)} of {len(results)} receipts invalid:\n{process.log_tail()}"
    assert set(health) == {200}
    gateway = build_gateway(load_config(None, process.env), migrate=False)
    try:
        with gateway.read() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == 24
    finally:
        gateway.engine.dispose()
