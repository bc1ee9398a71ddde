"""Database engine, sessions, migrations and the outbound worker claim.

SQLite (WAL) is the embedded default, PostgreSQL the engine to scale out on; both come in through a URL.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Select, create_engine, event, make_url, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from accesspoint.store.models import Direction, Message, MessageState

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Execution option read by the SQLite `begin` hook: "IMMEDIATE" takes the write lock when the transaction starts.
SQLITE_BEGIN = "sqlite_begin"
# PostgreSQL advisory lock key held while migrating (an arbitrary constant: "peppolap" in ASCII)
MIGRATION_LOCK = 0x706570706F6C6170


# How long a new connection retries switching a fresh database file to WAL while another connection writes to it.
WAL_SWITCH_SECONDS = 30.0


def _enable_wal(cursor: Any) -> None:
    """PRAGMA journal_mode=WAL, retried: on a file still in rollback-journal mode (a fresh data dir) the switch
    needs the file to itself, and SQLite answers "database is locked" at once instead of waiting the busy timeout
    when another connection is writing (several gateway processes migrating at start-up). Once one connection has
    switched, the mode is stored in the file and the pragma is a no-op for the others."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # timeout is sqlite3's busy timeout: wait up to 30 s for another writer instead of failing at once
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Python's sqlite3 opens transactions lazily and at its own moments; we issue BEGIN ourselves
            # (SQLAlchemy's documented pysqlite recipe) so a transaction spans reads and writes as written.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
            if mode not in ("DEFERRED", "IMMEDIATE"):
                raise ValueError(f"{SQLITE_BEGIN} must be DEFERRED or IMMEDIATE, not {mode!r}")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # libpq waits forever for an unreachable host by default; /health and workers must not hang on it
        connect_args["connect_timeout"] = 10
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: a claimed message or a stored receipt is used after its transaction.
    return sessionmaker(engine, expire_on_commit=False)


def display_url(url: str) -> str:
    """The URL without its password, for health pages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@contextmanager
def _engine_for(url_or_engine: str | Engine) -> Iterator[Engine]:
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = make_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic), creating it on an empty database.

    Safe to run from several processes at once (every gateway process may call it at start-up): the migration
    runs in one transaction that first takes a lock, a PostgreSQL advisory lock or SQLite's write lock, so
    the others wait and then find the schema already current.
    """
    cfg = alembic_config()
    with _engine_for(url_or_engine) as engine, engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)


def current_revision(url_or_engine: str | Engine) -> str | None:
    """The revision the database is at, None for a database never migrated."""
    with _engine_for(url_or_engine) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def begin_write(session: Session) -> None:
    """Open the session's transaction for read-then-write work (a duplicate check then an insert, a claim).

    SQLite: `BEGIN IMMEDIATE` takes the write lock up front, so concurrent writers wait their turn (busy timeout);
    a deferred transaction that read first would instead fail with "database is locked" when another process
    wrote meanwhile. PostgreSQL: an ordinary transaction; there row locks and unique constraints do that work.
    """
    if session.in_transaction():
        raise RuntimeError("begin_write needs a session without an open transaction (commit or roll back first)")
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
    else:
        session.connection()


Row = TypeVar("Row")


def claim(session: Session, due: Select[tuple[Row]], mark: Callable[[list[Row]], None]) -> list[Row]:
    """The one queue-claim idiom, used by every queue: select the due rows, mark them claimed, commit.

    PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, so any number of workers on any hosts claim disjoint rows.
    SQLite: the claim runs in `BEGIN IMMEDIATE`, which serialises writers of the file; one worker is the
    supported set-up, several only wait for each other.

    The session must have no transaction open: the claim is its own short transaction, committed here so no
    row lock is held while the worker talks to the network. `mark` gets the claimed rows (possibly none) inside
    that transaction.
    """
    if session.in_transaction():
        raise RuntimeError("a claim needs a session without an open transaction: it commits the claim itself")
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    try:
        begin_write(session)
        rows = list(session.scalars(due))
        mark(rows)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return rows


def claim_outbound(session: Session, worker_id: str, limit: int, now: datetime, lease: timedelta) -> list[Message]:
    """Claim up to `limit` due outbound messages for `worker_id` and commit the claim.

    Due: `queued` or `retrying` with `next_attempt_at <= now`, and `sending` whose lease ran out (its worker
    died mid-send; the AS4 MessageId is kept by the sender, so the receiving AP sees a duplicate, not a second
    invoice). Claimed messages are `sending`, `locked_by=worker_id`, `locked_until=now+lease`.

    Claimed through `claim`, so the locking rules are those of every queue.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    due = or_(
        (Message.state.in_([MessageState.QUEUED, MessageState.RETRYING])) & (Message.next_attempt_at <= now),
        (Message.state == MessageState.SENDING) & (Message.locked_until < now),
    )
    query = (
        select(Message)
        .where(Message.direction == Direction.OUTBOUND, due)
        .order_by(Message.next_attempt_at, Message.created_at)
        .limit(limit)
    )

    def mark(messages: list[Message]) -> None:
        for message in messages:
            message.state = MessageState.SENDING
            message.locked_by = worker_id
            message.locked_until = now + lease

    return claim(session, query, mark)
