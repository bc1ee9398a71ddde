"""`peppol-ap db upgrade` and `peppol-ap db current` against real databases."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import inspect

from accesspoint.cli.main import cli
from accesspoint.store.database import head_revision, make_engine


def test_current_then_upgrade_then_current(database_url: str) -> None:
    runner = CliRunner()
    before = runner.invoke(cli, ["db", "current", "--url", database_url])
    assert before.exit_code == 1, before.output
    assert "none (empty database)" in before.output and "peppol-ap db upgrade" in before.output

    upgraded = runner.invoke(cli, ["db", "upgrade", "--url", database_url])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"at revision {head_revision()} (newest)" in upgraded.output

    after = runner.invoke(cli, ["db", "current", "--url", database_url])
    assert after.exit_code == 0, after.output
    engine = make_engine(database_url)
    try:
        assert "messages" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_upgrade_uses_the_configured_database_and_hides_passwords() -> None:
    runner = CliRunner()
    unreachable = "postgresql+psycopg://gateway:s3cret@127.0.0.1:1/gateway"
    result = runner.invoke(cli, ["db", "upgrade"], env={"PEPPOL_AP_DATABASE__URL": unreachable})
    assert result.exit_code == 2
    assert "s3cret" not in result.output
    assert "gateway:***@127.0.0.1:1/gateway" in result.output
    assert "connection refused" in result.output.lower()
