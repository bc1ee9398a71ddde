"""The migrated schema is exactly the models, on SQLite and PostgreSQL, and migrations run both ways."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from accesspoint.store.database import alembic_config, current_revision, head_revision, make_engine, upgrade
from accesspoint.store.models import Base

TABLES = {
    "organisations",
    "participants",
    "participant_document_types",
    "api_clients",
    "messages",
    "attempts",
    "worker_heartbeats",
    "receipts",
    "events",
    "webhook_subscriptions",
    "webhook_deliveries",
    "audit_log",
    "retention_counts",
}


def _diffs(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_upgrade_creates_schema_equal_to_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_models_cover_every_table() -> None:
    assert set(Base.metadata.tables) == TABLES


def test_upgrade_twice_is_a_no_op_and_downgrade_removes_everything(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert current_revision(engine) is None
        upgrade(engine)
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_sqlite_engine_is_durable_and_enforces_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'gateway.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_concurrent_upgrades_wait_for_each_other(database_url: str) -> None:
    # every gateway process may migrate at start-up; only one may do the work, the others must find it done
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def migrate() -> None:
        try:
            start.wait()
            upgrade(database_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert current_revision(database_url) == head_revision()
