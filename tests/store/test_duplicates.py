"""Inbound duplicate detection by AS4 MessageId holds across concurrent writers: exactly one row per id."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accesspoint.store.database import begin_write, make_engine, session_factory
from accesspoint.store.models import Direction, Message, MessageState


def test_concurrent_receivers_store_each_message_id_once(db_engine: Engine, database_url: str) -> None:
    ids = [f"{n}@peer.example" for n in range(25)]
    workers = 4
    outcomes: Counter[str] = Counter()
    inserted: Counter[str] = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(workers)
    lock = threading.Lock()

    def receive(seed: int) -> None:
        engine = make_engine(database_url)
        sessions = session_factory(engine)
        order = ids[:]
        random.Random(seed).shuffle(order)
        try:
            start.wait()
            for as4_id in order:
                # what the receiving pipeline does: check for a duplicate, else store, in one write transaction
                with sessions() as session:
                    begin_write(session)
                    seen = session.scalar(
                        select(Message.id).where(
                            Message.direction == Direction.INBOUND, Message.as4_message_id == as4_id
                        )
                    )
                    if seen:
                        outcome = "duplicate"
                    else:
                        session.add(
                            Message(direction=Direction.INBOUND, state=MessageState.RECEIVED, as4_message_id=as4_id)
                        )
                        try:
                            session.commit()
                            outcome = "stored"
                        except IntegrityError:
                            # PostgreSQL: two transactions both saw no row; the unique constraint lets one win
                            session.rollback()
                            outcome = "rejected by the unique constraint"
                with lock:
                    outcomes[outcome] += 1
                    if outcome == "stored":
                        inserted[as4_id] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=receive, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert inserted == Counter({as4_id: 1 for as4_id in ids})
    assert sum(outcomes.values()) == workers * len(ids)
    if db_engine.dialect.name == "sqlite":
        # BEGIN IMMEDIATE serialises the check and the insert: nobody even reaches the constraint
        assert "rejected by the unique constraint" not in outcomes
    with session_factory(db_engine)() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == len(ids)


def test_begin_write_refuses_an_open_transaction(db_engine: Engine) -> None:
    with session_factory(db_engine)() as session:
        session.execute(select(Message.id))
        with pytest.raises(RuntimeError, match="without an open transaction"):
            begin_write(session)


def test_a_savepoint_absorbs_a_duplicate_without_losing_the_transaction(db_session: Session) -> None:
    db_session.add(Message(direction=Direction.INBOUND, state=MessageState.RECEIVED, as4_message_id="a@peer"))
    db_session.commit()
    begin_write(db_session)
    db_session.add(Message(direction=Direction.INBOUND, state=MessageState.RECEIVED, as4_message_id="b@peer"))
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(Message(direction=Direction.INBOUND, state=MessageState.RECEIVED, as4_message_id="a@peer"))
    db_session.commit()
    stored = set(db_session.scalars(select(Message.as4_message_id)))
    assert stored == {"a@peer", "b@peer"}
