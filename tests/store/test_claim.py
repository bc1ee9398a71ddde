"""claim_outbound: due messages only, committed claims, and no message claimed twice by concurrent workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from accesspoint.store.database import claim_outbound, make_engine, session_factory
from accesspoint.store.models import Direction, Message, MessageState

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _outbound(state: MessageState, due: datetime | None, **fields: object) -> Message:
    return Message(direction=Direction.OUTBOUND, state=state, next_attempt_at=due, **fields)


def test_claims_only_due_outbound_messages_and_commits(db_engine: Engine) -> None:
    sessions = session_factory(db_engine)
    past, future = NOW - timedelta(seconds=1), NOW + timedelta(seconds=1)
    with sessions() as session:
        due = {
            "queued": _outbound(MessageState.QUEUED, NOW),
            "retrying": _outbound(MessageState.RETRYING, past),
            "abandoned": _outbound(MessageState.SENDING, past, locked_by="dead", locked_until=past),
        }
        not_due = {
            "later": _outbound(MessageState.QUEUED, future),
            "unscheduled": _outbound(MessageState.QUEUED, None),
            "leased": _outbound(MessageState.SENDING, past, locked_by="alive", locked_until=future),
            "sent": _outbound(MessageState.SENT, past),
            "failed": _outbound(MessageState.FAILED, past),
            "inbound": Message(direction=Direction.INBOUND, state=MessageState.RECEIVED, next_attempt_at=past),
        }
        session.add_all([*due.values(), *not_due.values()])
        session.commit()
        ids = {name: message.id for name, message in {**due, **not_due}.items()}

    with sessions() as session:
        claimed = claim_outbound(session, "worker-1", limit=10, now=NOW, lease=LEASE)
        assert not session.in_transaction()
    assert {m.id for m in claimed} == {ids[name] for name in due}
    assert all((m.state, m.locked_by, m.locked_until) == ("sending", "worker-1", NOW + LEASE) for m in claimed)

    # the claim is committed: a second worker sees it
    with sessions() as session:
        assert claim_outbound(session, "worker-2", limit=10, now=NOW, lease=LEASE) == []
        stored = {m.id: m for m in session.scalars(select(Message))}
    assert {i for i, m in stored.items() if m.locked_by == "worker-1"} == {ids[name] for name in due}
    assert stored[ids["leased"]].locked_by == "alive"
    assert stored[ids["later"]].state == MessageState.QUEUED


def test_limit_takes_the_earliest_first(db_engine: Engine) -> None:
    sessions = session_factory(db_engine)
    with sessions() as session:
        messages = [_outbound(MessageState.QUEUED, NOW - timedelta(minutes=n)) for n in range(5)]
        session.add_all(messages)
        session.commit()
        oldest = [m.id for m in messages[::-1]]
    with sessions() as session:
        first = claim_outbound(session, "w", limit=2, now=NOW, lease=LEASE)
        second = claim_outbound(session, "w", limit=2, now=NOW, lease=LEASE)
    assert [m.id for m in first + second] == oldest[:4]


def test_refuses_a_session_inside_a_transaction_and_bad_arguments(db_engine: Engine) -> None:
    with session_factory(db_engine)() as session:
        session.execute(select(Message.id))
        with pytest.raises(RuntimeError, match="without an open transaction"):
            claim_outbound(session, "w", limit=1, now=NOW, lease=LEASE)
        session.rollback()
        with pytest.raises(ValueError, match="limit"):
            claim_outbound(session, "w", limit=0, now=NOW, lease=LEASE)
        with pytest.raises(ValueError, match="timezone"):
            claim_outbound(session, "w", limit=1, now=NOW.replace(tzinfo=None), lease=LEASE)


def test_concurrent_workers_claim_each_message_exactly_once(db_engine: Engine, database_url: str) -> None:
    total, workers, batch = 200, 3, 7
    with session_factory(db_engine)() as session:
        session.add_all(_outbound(MessageState.QUEUED, NOW - timedelta(seconds=n % 13)) for n in range(total))
        session.commit()

    claims: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(name: str) -> None:
        # each worker has its own engine: separate connections, as separate processes would have
        engine = make_engine(database_url)
        mine: list[str] = []
        try:
            sessions = session_factory(engine)
            start.wait()
            while True:
                with sessions() as session:
                    claimed = claim_outbound(session, name, limit=batch, now=NOW, lease=LEASE)
                if not claimed:
                    break
                mine.extend(m.id for m in claimed)
        except BaseException as exc:
            errors.append(exc)
        finally:
            claims[name] = mine
            engine.dispose()

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    counts = Counter(message_id for ids in claims.values() for message_id in ids)
    assert len(counts) == total
    assert set(counts.values()) == {1}

    with session_factory(db_engine)() as session:
        stored = list(session.scalars(select(Message)))
    assert {m.state for m in stored} == {MessageState.SENDING}
    owners = {m.id: m.locked_by for m in stored}
    assert owners == {message_id: name for name, ids in claims.items() for message_id in ids}


def test_worker_processes_claim_each_message_exactly_once(db_engine: Engine, database_url: str, tmp_path: Path) -> None:
    total, workers = 200, 3
    with session_factory(db_engine)() as session:
        session.add_all(_outbound(MessageState.QUEUED, NOW - timedelta(seconds=n % 11)) for n in range(total))
        session.commit()

    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "tests.store.claim_worker", database_url, "", str(go), NOW.isoformat()]
    processes = []
    for n in range(workers):
        command[4] = f"process-{n}"
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True))
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        go.touch()
        results = {}
        for n, process in enumerate(processes):
            out, _ = process.communicate(timeout=120)
            assert process.returncode == 0, out
            results[f"process-{n}"] = json.loads(out)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    counts = Counter(message_id for ids in results.values() for message_id in ids)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    with session_factory(db_engine)() as session:
        owners = {m.id: m.locked_by for m in session.scalars(select(Message))}
    assert owners == {message_id: name for name, ids in results.items() for message_id in ids}
