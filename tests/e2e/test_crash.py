"""Crash test: the gateway (gunicorn, 2 worker processes sharing one SQLite file) is SIGKILLed at random moments
during a burst of sends and restarted each time.

Senders behave like a Peppol AP: after a transport failure (connection refused or reset, no answer) they resend the
same bytes with the same MessageId (as4.md pitfall 16) until they get an answer. The invariant: every message
whose receipt a sender got is stored (row + blob equal to the SBD sent) with exactly one `inbound.received` event,
and the receipt it got is the one stored. Nothing is stored twice.
"""

from __future__ import annotations

import hashlib
import os
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from accesspoint.config import load_config
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.outbound import build_message
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.flows.webhooks import INBOUND_RECEIVED
from accesspoint.gateway import build_gateway
from accesspoint.store.models import Event, Message
from certs.keystore import load_pem
from tests.e2e.gateway_process import GatewayProcess

NOW = datetime.now(UTC)  # the tests' time for what they build

pytestmark = pytest.mark.integration

MESSAGES = 200
SENDERS = 4
KILLS = 4
MAX_ATTEMPTS = 100


@dataclass
class Prepared:
    message_id: str
    content_type: str
    body: bytes
    sbd_sha256: str
    references: list  # type: ignore[type-arg]


@dataclass
class Outcome:
    receipt: bytes | None = None
    attempts: int = 0
    transport_failures: int = 0
    error: str | None = None


def test_sigkill_during_a_burst_never_loses_a_receipted_message(tmp_path: Path, vectors: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    gateway = GatewayProcess(tmp_path / "data", workers=2)
    gateway.prepare()
    sender = gateway.sender()[0]
    recipient = load_pem(gateway.pki.ap_key, gateway.pki.ap_cert).certificate
    invoice = (vectors / "bis" / "base-example.xml").read_bytes()

    prepared: list[Prepared] = []
    for _ in range(MESSAGES):
        sbd = build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=datetime.now(UTC)), invoice)
        with build_message(sbd=sbd, our_key=sender, recipient_cert=recipient, domain="sender.example",
                           now=NOW) as built:
            prepared.append(Prepared(built.message_id, built.content_type, b"".join(built.chunks()),
                                     hashlib.sha256(sbd).hexdigest(), built.sent_references))

    outcomes = {p.message_id: Outcome() for p in prepared}
    work: queue.Queue[Prepared] = queue.Queue()
    for item in prepared:
        work.put(item)
    done = threading.Event()

    def send() -> None:
        session = requests.Session()
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            outcome = outcomes[item.message_id]
            while outcome.attempts < MAX_ATTEMPTS:
                outcome.attempts += 1
                try:
                    response = session.post(gateway.as4_url, data=item.body, timeout=30,
                                            headers={"Content-Type": item.content_type})
                except requests.RequestException:
                    outcome.transport_failures += 1
                    session = requests.Session()
                    time.sleep(0.05)
                    continue
                if response.status_code >= 500:
                    outcome.transport_failures += 1
                    time.sleep(0.05)
                    continue
                verdict = verify_receipt(response.content, sent_message_id=item.message_id,
                                         sent_references=item.references)
                if verdict.valid:
                    outcome.receipt = response.content
                else:
                    outcome.error = "; ".join(verdict.problems)
                break

    # kill when the burst has reached random points of its progress, a random few ms later (mid-request)
    thresholds = sorted(rng.sample(range(MESSAGES // 10, MESSAGES * 9 // 10), KILLS))

    def killer() -> None:
        for threshold in thresholds:
            while sum(o.receipt is not None for o in list(outcomes.values())) < threshold:
                if done.wait(0.01):
                    return
            time.sleep(rng.uniform(0.0, 0.05))
            gateway.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            gateway.start()

    started = time.monotonic()
    gateway.start()
    try:
        senders = [threading.Thread(target=send) for _ in range(SENDERS)]
        kill_thread = threading.Thread(target=killer)
        for thread in senders:
            thread.start()
        kill_thread.start()
        for thread in senders:
            thread.join(120)
        done.set()
        kill_thread.join(60)
    finally:
        gateway.stop()
    seconds = time.monotonic() - started

    store = build_gateway(load_config(None, gateway.env), migrate=False)
    try:
        with store.read() as session:
            rows = {m.as4_message_id: m for m in session.scalars(select(Message))}
            receipts = {m.as4_message_id: m.receipt.raw for m in rows.values() if m.receipt is not None}
            events = Counter(session.scalars(select(Event.message_id).where(Event.type == INBOUND_RECEIVED)))
            event_rows = session.scalar(select(func.count()).select_from(Event))
        blob_files = {p.name for p in store.blobs.root.rglob("*") if p.is_file() and not p.name.startswith(".")}
        referenced = {m.blob_key for m in rows.values()}
        stored_ok = 0
        for item in prepared:
            message = rows.get(item.message_id)
            if message is None:
                continue
            with store.blobs.open(message.blob_key or "") as blob:
                if hashlib.sha256(blob.read()).hexdigest() == item.sbd_sha256:
                    stored_ok += 1
    finally:
        store.engine.dispose()

    receipted = [mid for mid, o in outcomes.items() if o.receipt is not None]
    errors = {mid: o.error for mid, o in outcomes.items() if o.error}
    attempts = sum(o.attempts for o in outcomes.values())
    failures = sum(o.transport_failures for o in outcomes.values())
    print(f"\ncrash test (seed {seed}): {MESSAGES} messages, {SENDERS} senders, {gateway.starts - 1} SIGKILL+restart, "
          f"{seconds:.1f} s\n  HTTP attempts {attempts} (transport failures {failures}), receipted {len(receipted)}, "
          f"stored {len(rows)} (SBD intact {stored_ok}), delivered (inbound.received events) {sum(events.values())} "
          f"for {len(events)} messages, ebMS errors {len(errors)}, orphaned blobs {len(blob_files - referenced)}")

    assert gateway.starts - 1 == KILLS, "every planned kill happened during the burst"
    assert not errors, errors
    for message_id in receipted:
        assert message_id in rows, f"{message_id} was receipted but is not stored"
        assert receipts[message_id] == outcomes[message_id].receipt, "the receipt sent is the receipt stored"
        assert events[rows[message_id].id] == 1, f"{message_id} has {events[rows[message_id].id]} received events"
    assert stored_ok == len(rows) and event_rows == len(rows) == sum(events.values())
    assert set(rows) <= set(outcomes)
    # senders resend after every transport failure, so in the end every message got its receipt
    assert len(receipted) == MESSAGES
