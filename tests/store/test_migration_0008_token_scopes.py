"""Migration 0008 on SQLite and PostgreSQL: tokens made before scopes existed keep everything their role allowed,
and never expire."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from accesspoint.store.database import alembic_config, make_engine, upgrade
from accesspoint.store.scopes import FULL_SCOPES, ApiRole

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_existing_tokens_get_the_full_set_of_their_role(database_url: str) -> None:
    upgrade(database_url, "0007")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO organisations (id, name, country, created_at, updated_at) "
                                       "VALUES (1, 'Acme AB', 'SE', :now, :now)"), {"now": NOW})
            for n, role, organisation in ((1, "network", 1), (2, "admin", None)):
                connection.execute(sa.text("INSERT INTO api_clients (id, organisation_id, name, role, token_hash, "
                                           "token_prefix, created_at) VALUES (:id, :org, 'old', :role, :hash, "
                                           "'pap_abcd', :now)"),
                                   {"id": n, "org": organisation, "role": role, "hash": f"{n:064x}", "now": NOW})
        upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(sa.select(sa.column("id"), sa.column("scopes", sa.JSON),
                                                sa.column("expires_at")).select_from(sa.table("api_clients"))
                                      .order_by(sa.column("id"))).all()
        assert [(row.id, row.scopes, row.expires_at) for row in rows] == [
            (1, list(FULL_SCOPES[ApiRole.NETWORK]), None), (2, list(FULL_SCOPES[ApiRole.ADMIN]), None)]

        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0007")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("api_clients")}
        assert "scopes" not in columns and "expires_at" not in columns
        assert "idempotency_fingerprint" not in {c["name"] for c in sa.inspect(engine).get_columns("messages")}
    finally:
        engine.dispose()
