"""Publishing test records in an `smp.zonestore.ZoneStore` (the local SML writes through its own transactions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smp.zonestore import ZoneStore, put_records, put_servfail


def set_records(store: ZoneStore, name: str, records: Sequence[Mapping[str, Any]] | None) -> None:
    with store.transaction() as connection:
        put_records(connection, name, records)


def set_servfail(store: ZoneStore, name: str, failing: bool = True) -> None:
    with store.transaction() as connection:
        put_servfail(connection, name, failing)


def names(store: ZoneStore) -> set[str]:
    """Every published name."""
    with store.transaction() as connection:
        return {row[0] for row in connection.execute("SELECT name FROM naptr")}
