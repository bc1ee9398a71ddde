"""`peppol-ap db`: the database schema (Alembic migrations shipped inside the package)."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from accesspoint.cli.common import config_option, fail, fail_config
from accesspoint.config import ConfigError, load_config
from accesspoint.store.database import current_revision, display_url, head_revision, upgrade

url_option = click.option("--url", help="Database URL (overrides database.url of the configuration).")


def _database_url(config_path: str | None, url: str | None) -> str:
    """The URL to work on (--url, else the configured one)."""
    if url:
        return url
    try:
        return load_config(config_path).database_url
    except ConfigError as exc:
        fail_config(exc)


def _database_error(target: str, exc: SQLAlchemyError) -> None:
    # the driver's own message (connection refused, authentication failed, ...) without SQLAlchemy's SQL echo
    detail = str(getattr(exc, "orig", None) or exc).strip()
    fail(f"database {display_url(target)}: {detail}")


@click.group()
def db() -> None:
    """Create and migrate the database schema."""


@db.command("upgrade")
@config_option
@url_option
def db_upgrade(config_path: str | None, url: str | None) -> None:
    """Migrate the database to the newest schema (creates it on an empty database)."""
    target = _database_url(config_path, url)
    try:
        upgrade(target)
        revision = current_revision(target)
    except SQLAlchemyError as exc:
        _database_error(target, exc)
        return
    click.echo(f"database {display_url(target)} is at revision {revision} (newest)")


@db.command("current")
@config_option
@url_option
def db_current(config_path: str | None, url: str | None) -> None:
    """Show the database's schema revision; exit status 1 when it needs `peppol-ap db upgrade`."""
    target = _database_url(config_path, url)
    try:
        revision = current_revision(target)
    except SQLAlchemyError as exc:
        _database_error(target, exc)
        return
    head = head_revision()
    if revision == head:
        click.echo(f"database {display_url(target)} is at revision {revision} (newest)")
        return
    shown = revision or "none (empty database)"
    click.echo(f"database {display_url(target)} is at revision {shown}; newest is {head}: run `peppol-ap db upgrade`")
    raise SystemExit(1)
