"""The SQLite file the local SML writes and smp.dnsserver reads: one row per published DNS name.

    naptr(name PRIMARY KEY, records JSON)   name: absolute, lower case, no trailing dot
    servfail(name PRIMARY KEY)              names answered with SERVFAIL (to test "temporarily unavailable")

records is a JSON list of NAPTR records as `smp_record` builds them. The local SML keeps its own
tables (SMPs, participant -> owner SMP, migrations) in the same file, so a participant change and
its DNS record are one transaction. WAL mode lets the DNS server read while the SML writes; every
change is a few rows, never a rewrite of the zone.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS naptr (name TEXT PRIMARY KEY, records TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS servfail (name TEXT PRIMARY KEY) WITHOUT ROWID;
"""


def smp_record(smp_uri: str, *, order: int = 100, preference: int = 10) -> dict[str, Any]:
    """The U-NAPTR record the SML publishes for a participant served by the SMP at `smp_uri`."""
    return {"order": order, "preference": preference, "flags": "U", "service": "Meta:SMP",
            "regexp": f"!^.*$!{smp_uri}!", "replacement": "."}


def normalise(name: str) -> str:
    """The key a DNS name is stored under (DNS names compare case-insensitively)."""
    return name.strip().rstrip(".").lower()


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection to the store at `path` (created with its schema if missing), in WAL mode.

    synchronous=NORMAL: in WAL mode a commit survives a crash of the process, only a power loss
    may drop the last commits. That is the right trade for a local development SML whose callers
    re-register on the next run; it is what makes thousands of single-row commits cheap.
    isolation_level=None: transactions are explicit (`transaction`), so one SOAP call is one commit.
    """
    connection = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise ValueError(f"zone store {path} is not a usable SQLite database ({exc}); repair or remove it "
                         "(removing forgets every registration)") from None
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): writers queue up instead of failing halfway."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def put_records(connection: sqlite3.Connection, name: str, records: Sequence[Mapping[str, Any]] | None) -> None:
    """Publish (records) or withdraw (None) one name, inside the caller's transaction."""
    if records is None:
        connection.execute("DELETE FROM naptr WHERE name = ?", (normalise(name),))
    else:
        connection.execute("INSERT OR REPLACE INTO naptr (name, records) VALUES (?, ?)",
                           (normalise(name), json.dumps([dict(r) for r in records])))


def put_servfail(connection: sqlite3.Connection, name: str, failing: bool = True) -> None:
    if failing:
        connection.execute("INSERT OR IGNORE INTO servfail (name) VALUES (?)", (normalise(name),))
    else:
        connection.execute("DELETE FROM servfail WHERE name = ?", (normalise(name),))


class ZoneStore:
    """One process's handle on the store; thread-safe (one connection behind a lock: every
    statement is an indexed lookup or a single-row write, so the lock is never held for long)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection = connect(self.path)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._connection) as connection:
            yield connection

    def lookup(self, name: str) -> tuple[list[dict[str, Any]] | None, bool]:
        """(records or None when the name is not published, whether the name answers SERVFAIL)."""
        key = normalise(name)
        with self._lock:
            row = self._connection.execute("SELECT records FROM naptr WHERE name = ?", (key,)).fetchone()
            failing = self._connection.execute("SELECT 1 FROM servfail WHERE name = ?", (key,)).fetchone()
        return (json.loads(row[0]) if row else None), failing is not None

    def close(self) -> None:
        with self._lock:
            self._connection.close()
