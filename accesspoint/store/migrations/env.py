"""Alembic environment: runs on the connection handed over by `accesspoint.store.database.upgrade`.

The `alembic` command works too when `sqlalchemy.url` is set, which is how a new revision is drafted after a
model change (then read it, clean it up and keep it free of model imports):

    printf '[alembic]\nscript_location = accesspoint/store/migrations\n' > /tmp/a.ini
    printf 'sqlalchemy.url = sqlite:///var/draft.db\n' >> /tmp/a.ini
    PYTHONPATH=. alembic -c /tmp/a.ini upgrade head
    PYTHONPATH=. alembic -c /tmp/a.ini revision --autogenerate --rev-id 0002 -m "what changed"
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from accesspoint.store.models import Base
from accesspoint.store.types import UtcDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Revisions must not import the models (they change; a revision is frozen), so the custom UTC type is
    # written as the plain column type it stores.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    from accesspoint.store.database import make_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection in config.attributes or set sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            run_on(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported: run them against a database")
run()
