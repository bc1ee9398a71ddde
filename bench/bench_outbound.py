"""Outbound throughput and latency end to end on loopback: gateway A's API takes submissions, `peppol-ap worker`
processes of A look the receiver up (DNS NAPTR + signed SMP, cached), build, sign, encrypt and POST to gateway B,
which receives, stores and answers with a signed receipt that A verifies and stores.

    scripts/with-postgres.sh env PYTHONPATH=$PWD /work/venv/bin/python bench/bench_outbound.py --messages 200
    PYTHONPATH=$PWD /work/venv/bin/python bench/bench_outbound.py --workers 1 --sqlite     # one worker on SQLite

For each worker count: a fresh pair of gateways (A on a new PostgreSQL database, B on SQLite with 2 gunicorn
workers); `--messages` invoices are submitted through A's API by 4 client threads while the workers run; the
figures are messages per second from the first submit to the last `sent`, and submit-to-sent latency percentiles
under that load. Then `--probes` single messages, each submitted only after the previous one is sent, give the
submit-to-sent time of an otherwise idle gateway (it includes up to 1 s of worker idle polling). "errors" counts
attempts that broke unexpectedly in the workers (released and retried; should be 0).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accesspoint.store.models import Direction, Message, MessageState  # noqa: E402
from tests.e2e.send_world import X, Y, open_store, send_world  # noqa: E402
from tests.sending.harness import invoice  # noqa: E402

TEMPLATE = ROOT.parent / "shared" / "vectors" / "bis" / "base-example.xml"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def fresh_postgres_database(admin_url: str) -> tuple[str, str]:
    name = f"peppol_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def drop_postgres_database(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(workers: int, messages: int, probes: int, database_url: str | None) -> dict[str, float]:
    document = invoice(TEMPLATE, X, Y)
    with tempfile.TemporaryDirectory(prefix="bench-outbound-") as tmp, \
            send_world(Path(tmp), a_database_url=database_url, response_timeout_seconds=60) as world:
        store = open_store(world.a)
        receiver_store = open_store(world.b)
        try:
            world.start_workers(workers)
            started = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                ids = list(pool.map(lambda _: world.submit(document), range(messages)))
            submitted = time.monotonic() - started
            deadline = time.monotonic() + 600
            while True:
                with store.sessions() as session:
                    done = session.scalar(select(func.count()).select_from(Message).where(
                        Message.state.in_([MessageState.SENT, MessageState.FAILED]))) or 0
                if done >= messages or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            with store.sessions() as session:
                rows = session.execute(select(Message.state, Message.created_at, Message.sent_at)
                                       .where(Message.id.in_(ids))).all()
            sent = [r for r in rows if r.state == MessageState.SENT]
            if len(sent) != messages:
                raise RuntimeError(f"{messages - len(sent)} of {messages} messages were not sent")
            first = min(r.created_at for r in rows)
            last = max(r.sent_at for r in sent)
            latencies = [(r.sent_at - r.created_at).total_seconds() for r in sent]
            probe_times = []
            for _ in range(probes):
                begin = time.monotonic()
                world.wait_for(world.submit(document), ("sent",), timeout=60)
                probe_times.append(time.monotonic() - begin)
            with receiver_store.sessions() as session:
                received = session.scalar(select(func.count()).select_from(Message)
                                          .where(Message.direction == Direction.INBOUND)) or 0
            if received != messages + probes:
                raise RuntimeError(f"B stored {received} messages, expected {messages + probes}")
            world.stop_workers()
            errors = sum(log.read_text(errors="replace").count("unexpected failure during an attempt")
                         for log in world.a.data_dir.glob("worker-*.log"))
            return {
                "errors": errors, "workers": workers, "messages": messages, "submit_s": submitted,
                "msg_per_s": messages / (last - first).total_seconds(),
                "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95),
                "idle_p50_s": statistics.median(probe_times) if probe_times else float("nan"),
                "idle_max_s": max(probe_times) if probe_times else float("nan"),
            }
        finally:
            store.engine.dispose()
            receiver_store.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true", help="A on SQLite (one worker only)")
    args = parser.parse_args()
    admin_url = os.environ.get("PEPPOL_TEST_POSTGRES_URL")
    if not args.sqlite and not admin_url:
        parser.error("run through scripts/with-postgres.sh (PEPPOL_TEST_POSTGRES_URL), or pass --sqlite")
    if args.sqlite and any(w != 1 for w in args.workers):
        parser.error("SQLite supports one worker; use PostgreSQL for more")
    print(f"{'workers':>7} {'messages':>8} {'submit s':>8} {'msg/s':>7} {'p50 s':>7} {'p95 s':>7} "
          f"{'idle p50 s':>10} {'idle max s':>10} {'errors':>6}")
    for workers in args.workers:
        url, name = (None, None) if args.sqlite else fresh_postgres_database(admin_url or "")
        try:
            r = run(workers, args.messages, args.probes, url)
        finally:
            if name:
                drop_postgres_database(admin_url or "", name)
        print(f"{r['workers']:>7} {r['messages']:>8} {r['submit_s']:>8.1f} {r['msg_per_s']:>7.1f} {r['p50_s']:>7.2f} "
              f"{r['p95_s']:>7.2f} {r['idle_p50_s']:>10.2f} {r['idle_max_s']:>10.2f} {r['errors']:>6}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
