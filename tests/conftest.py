"""Shared fixtures: where the read-only reference vectors live, and databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from accesspoint.adapters.rules import ARTIFACTS, install
from accesspoint.store.database import make_engine, session_factory, upgrade

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PEPPOL_SHARED", ROOT.parent / "shared")).resolve()
VECTORS = SHARED / "vectors"
POSTGRES_ENV = "PEPPOL_TEST_POSTGRES_URL"
RULES_ENV = "PEPPOL_AP_VALIDATION__RULES_DIR"
MAVEN_REPOSITORY = Path.home() / ".m2" / "repository"


def cached_rule_jars() -> list[Path]:
    """The pinned rule jars in the local Maven repository (where `peppol-ap rules install` has Maven put them), or
    none when one is missing."""
    jars = [MAVEN_REPOSITORY.joinpath(*a.group.split("."), a.name, a.version, a.file_name) for a in ARTIFACTS]
    return jars if all(jar.is_file() for jar in jars) else []


@pytest.fixture(scope="session", autouse=True)
def bis_rules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The official BIS rules, installed once per test session (from the Maven cache, else with mvn) and named by
    PEPPOL_AP_VALIDATION__RULES_DIR for every gateway the tests start: submitting needs them."""
    target = tmp_path_factory.mktemp("bis-rules")
    jars = tmp_path_factory.mktemp("bis-jars")
    for jar in cached_rule_jars():
        (jars / jar.name).symlink_to(jar)
    install(target, jars if any(jars.iterdir()) else None)
    previous = os.environ.get(RULES_ENV)
    os.environ[RULES_ENV] = str(target)
    yield target
    if previous is None:
        os.environ.pop(RULES_ENV, None)
    else:
        os.environ[RULES_ENV] = previous


def rules_env() -> dict[str, str]:
    """The rules directory setting of the session, for tests that build their configuration from an explicit
    environment."""
    return {RULES_ENV: os.environ[RULES_ENV]}


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        raise RuntimeError(f"reference vectors not found at {VECTORS}; set PEPPOL_SHARED")
    return VECTORS


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """The PostgreSQL server of the run, on its administrative database (creates one database per test)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        # never a skip: a suite that silently leaves out PostgreSQL would pass with a broken production engine
        pytest.fail(
            f"{POSTGRES_ENV} is not set: run the tests through scripts/with-postgres.sh (as `make test` does), "
            "which starts a throwaway PostgreSQL, or point the variable at a server you run",
            pytrace=False,
        )
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    name = f"peppol_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database migrated to the newest schema."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    with session_factory(db_engine)() as session:
        yield session
