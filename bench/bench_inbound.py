"""Inbound throughput and latency of the running gateway (POST /as4 over loopback), and its peak memory for one
100 MB message.

    PYTHONPATH=$PWD /work/venv/bin/python bench/bench_inbound.py [--db sqlite] [--concurrency 1,4,16]
    scripts/with-postgres.sh /work/venv/bin/python bench/bench_inbound.py --db sqlite,postgresql
    PYTHONPATH=$PWD /work/venv/bin/python bench/bench_inbound.py --peak-mb 100 --db none

The gateway runs as its own process (gunicorn, `--workers 2` by default: the machine has 2 cores) on a fresh data
dir with one participant receiving BIS Billing 3.0 (`9915:helger`, the receiver of phase4's example SBD, 10,433
bytes). The messages are built before the clock starts (signing and encryption are the sender's cost), each with a
fresh MessageId and SBDH InstanceIdentifier, and sent by `--concurrency` threads with one HTTP connection each;
every answer must be a receipt. msg/s is messages over the wall time of a level; p50/p99 are per-request latencies.
PostgreSQL: a fresh database on the server of PEPPOL_TEST_POSTGRES_URL (scripts/with-postgres.sh starts one).

Peak memory: a gateway with one worker receives one message whose encrypted attachment is at least `--peak-mb` MiB
(an SBD of random-hex notes, gzip ratio about 2.2:1, streamed from disk by the client); reported is the worker's
VmHWM (peak resident set) against its resident set just before the request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from accesspoint.core.peppol.outbound import build_message  # noqa: E402
from accesspoint.core.sbdh import parse_sbdh  # noqa: E402
from certs.keystore import load_pem  # noqa: E402
from tests.e2e.gateway_process import GatewayProcess  # noqa: E402

NOW = datetime.now(UTC)  # the tests' time for what they build

TEMPLATE = ROOT.parent / "shared/vectors/as4/sbdh/good/phase4-base-sbdh.xml"
RECEIVER = "9915:helger"
WARM_UP = 10


@dataclass
class Built:
    content_type: str
    body: bytes


def build_messages(gateway: GatewayProcess, count: int) -> list[Built]:
    sender = gateway.sender()[0]
    recipient = load_pem(gateway.pki.ap_key, gateway.pki.ap_cert).certificate
    template = TEMPLATE.read_bytes()
    header = parse_sbdh(template)
    old_instance = f">{header.instance_identifier}<".encode()
    built = []
    for _ in range(count):
        sbd = template.replace(old_instance, f">{uuid.uuid4()}<".encode(), 1)
        with build_message(sbd=sbd, our_key=sender, recipient_cert=recipient, domain="bench.example",
                           now=NOW) as message:
            built.append(Built(message.content_type, b"".join(message.chunks())))
    return built


def send_all(url: str, messages: list[Built], concurrency: int) -> tuple[float, list[float], int]:
    """Wall seconds, per-request latencies, and how many answers were not receipts."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    cursor = iter(messages)

    def worker() -> None:
        nonlocal failures
        session = requests.Session()
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            started = time.perf_counter()
            response = session.post(url, data=item.body, headers={"Content-Type": item.content_type}, timeout=120)
            elapsed = time.perf_counter() - started
            ok = response.status_code == 200 and b":Receipt" in response.content and b":Error " not in response.content
            with lock:
                latencies.append(elapsed)
                failures += not ok

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def postgres_database() -> tuple[str, Callable[[], None]]:
    admin_url = os.environ.get("PEPPOL_TEST_POSTGRES_URL")
    if not admin_url:
        raise SystemExit("--db postgresql needs PEPPOL_TEST_POSTGRES_URL: run through scripts/with-postgres.sh")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"peppol_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def throughput(db: str, levels: list[int], per_level: int, workers: int, work: Path) -> None:
    database_url, cleanup = postgres_database() if db == "postgresql" else (None, None)
    gateway = GatewayProcess(work / f"data-{db}", workers=workers, database_url=database_url)
    try:
        gateway.prepare(RECEIVER)
        gateway.start()
        warm = build_messages(gateway, WARM_UP)
        send_all(gateway.as4_url, warm, 2)
        for concurrency in levels:
            messages = build_messages(gateway, per_level)
            seconds, latencies, failures = send_all(gateway.as4_url, messages, concurrency)
            print(f"{db:<10} {workers} workers  {concurrency:>3} senders  {len(messages):>5} msgs  "
                  f"{len(messages) / seconds:7.1f} msg/s  p50 {percentile(latencies, 0.5) * 1000:7.1f} ms  "
                  f"p99 {percentile(latencies, 0.99) * 1000:7.1f} ms  mean {statistics.mean(latencies) * 1000:7.1f} ms"
                  f"  not receipted {failures}", flush=True)
    finally:
        gateway.stop()
        if cleanup:
            cleanup()


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def peak_memory(attachment_mb: int, work: Path) -> None:
    from bench.as4_roundtrip import build_message as build_large
    from bench.as4_roundtrip import write_sbd

    gateway = GatewayProcess(work / "data-peak", workers=1)
    gateway.prepare(RECEIVER)
    sender = gateway.sender()[0]
    recipient = load_pem(gateway.pki.ap_key, gateway.pki.ap_cert).certificate
    sbd = work / "large-sbd.xml"
    sbd_size = write_sbd(TEMPLATE, sbd, int(attachment_mb * 2.3) << 20, note_bytes=2048)
    message = work / "large.mime"
    with message.open("wb") as out:
        content_type, _ = build_large(sbd, sender, recipient, out)
    wire = message.stat().st_size
    gateway.settings.update({"PEPPOL_AP_AS4__MAX_PAYLOAD_BYTES": str(sbd_size * 2),
                             "PEPPOL_AP_AS4__MAX_MESSAGE_BYTES": str(wire * 2)})
    try:
        gateway.start()
        [worker] = gateway.worker_pids()
        baseline = _kb(worker, "VmRSS")
        Path(f"/proc/{worker}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        started = time.perf_counter()
        with message.open("rb") as body:
            response = requests.post(gateway.as4_url, data=body, headers={"Content-Type": content_type}, timeout=600)
        seconds = time.perf_counter() - started
        peak = _kb(worker, "VmHWM")
    finally:
        gateway.stop()
    receipted = response.status_code == 200 and b":Receipt" in response.content
    print(f"peak memory: message {wire / 2**20:.1f} MiB on the wire (SBD {sbd_size / 2**20:.1f} MiB), "
          f"{'receipted' if receipted else 'NOT receipted: ' + response.text[:300]} in {seconds:.1f} s; worker RSS "
          f"{baseline / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB (+{(peak - baseline) / 1024:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", help="comma-separated: sqlite, postgresql; 'none' to skip")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated sender counts")
    parser.add_argument("--messages", type=int, default=200, help="messages per concurrency level")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the gateway")
    parser.add_argument("--peak-mb", type=int, default=0, help="also measure peak memory for a message this large")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-inbound-") as tmp:
        for db in [d for d in args.db.split(",") if d != "none"]:
            throughput(db, levels, args.messages, args.workers, Path(tmp))
        if args.peak_mb:
            peak_memory(args.peak_mb, Path(tmp))


if __name__ == "__main__":
    main()
