"""`peppol-ap tokens create --scope ... --expires ...` and `tokens list` against real databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from accesspoint.cli.main import cli
from accesspoint.cli.tokens import parse_expiry
from accesspoint.config import load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import ApiClient
from tests.web.conftest import Org, dev_pki, gateway_env, make_org  # noqa: F401 (fixture)

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


@pytest.fixture
def gateway(tmp_path: Path, dev_pki: Path, database_url: str) -> Iterator[Gateway]:  # noqa: F811
    gw = build_gateway(load_config(None, gateway_env(tmp_path / "data", dev_pki, database_url)))
    yield gw
    gw.engine.dispose()


@pytest.fixture
def acme(gateway: Gateway) -> Org:
    return make_org(gateway, "Acme AB")


def run(gateway: Gateway, *args: str) -> click.testing.Result:
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(gateway.config.data_dir),
           "PEPPOL_AP_DATABASE__URL": gateway.config.database_url}
    return CliRunner(env=env).invoke(cli, ["tokens", *args])


def stored(gateway: Gateway, name: str) -> ApiClient:
    with gateway.read() as session:
        return session.scalars(select(ApiClient).where(ApiClient.name == name)).one()


@pytest.mark.parametrize(("text", "expected"), [
    ("90d", NOW + timedelta(days=90)),
    ("12h", NOW + timedelta(hours=12)),
    ("2027-03-01", datetime(2027, 3, 1, tzinfo=UTC)),
    ("2027-03-01T12:30:00", datetime(2027, 3, 1, 12, 30, tzinfo=UTC)),
    ("2027-03-01T12:30:00+01:00", datetime(2027, 3, 1, 11, 30, tzinfo=UTC)),
])
def test_expiry_is_a_duration_or_an_iso_moment(text: str, expected: datetime) -> None:
    assert parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("text", ["90", "3 months", "tomorrow", "90x", "-1d", "99999999999d",
                                  "9999-12-31T23:00:00-05:00"])
def test_other_expiries_are_refused(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_expiry(text, NOW)


def test_create_with_scopes_and_expiry_then_list(gateway: Gateway, acme: Org) -> None:
    made = run(gateway, "create", "--org", str(acme.id), "--name", "acme reader", "--scope", "outbound:read",
               "--scope", "inbound:read", "--expires", "90d")
    assert made.exit_code == 0, made.output
    client = stored(gateway, "acme reader")
    assert client.scopes == ["outbound:read", "inbound:read"]
    assert client.expires_at is not None
    assert abs(client.expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    token = made.output.strip().splitlines()[-1]
    assert token.startswith("pap_") and "outbound:read inbound:read" in made.output

    admin = run(gateway, "create", "--admin", "--name", "desk", "--scope", "support", "--expires", "2030-01-31")
    assert admin.exit_code == 0, admin.output
    assert stored(gateway, "desk").scopes == ["support"]
    assert stored(gateway, "desk").expires_at == datetime(2030, 1, 31, tzinfo=UTC)

    listed = run(gateway, "list")
    assert listed.exit_code == 0, listed.output
    lines = {line.rsplit("  ", 1)[-1]: line for line in listed.output.strip().splitlines()}
    assert "[outbound:read inbound:read]" in lines["acme reader"] and "active, expires" in lines["acme reader"]
    assert "[support]" in lines["desk"] and "2030-01-31 00:00Z" in lines["desk"] and "never used" in lines["desk"]
    assert "no expiry" in lines["Acme AB erp"]
    assert token not in listed.output


def test_a_scope_of_the_other_role_or_a_past_expiry_is_refused(gateway: Gateway, acme: Org) -> None:
    wrong = run(gateway, "create", "--org", str(acme.id), "--name", "bad", "--scope", "admin")
    assert wrong.exit_code == 2 and "not one of a network token" in wrong.output
    past = run(gateway, "create", "--admin", "--name", "late", "--expires", "2020-01-01")
    assert past.exit_code == 2 and "has passed" in past.output
    garbage = run(gateway, "create", "--admin", "--name", "odd", "--expires", "soon")
    assert garbage.exit_code == 2 and "neither a duration" in garbage.output
    unknown = run(gateway, "create", "--admin", "--scope", "root")
    assert unknown.exit_code == 2
    missing = run(gateway, "create", "--org", "999")
    assert missing.exit_code == 2 and "organisation 999 does not exist" in missing.output
    with gateway.read() as session:
        assert [c.name for c in session.scalars(select(ApiClient))] == ["Acme AB erp"]
    assert run(gateway, "revoke", "999").exit_code == 2
