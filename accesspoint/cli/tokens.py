"""`peppol-ap tokens`: API tokens for the network (per organisation) and for admins."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from sqlalchemy import select

from accesspoint.cli.common import config_option, fail, load_gateway
from accesspoint.store import audit
from accesspoint.store.audit import Actor, token_snapshot
from accesspoint.store.models import ApiClient, ApiRole, Organisation


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens."""


@tokens.command("create")
@config_option
@click.option("--org", "organisation_id", type=int, help="Organisation id: a network token for its API calls.")
@click.option("--admin", "admin", is_flag=True, help="An admin token for /admin/api.")
@click.option("--name", default="", help="What the token is for (shown in listings).")
def create(config_path: str | None, organisation_id: int | None, admin: bool, name: str) -> None:
    """Create a token and print it once (only its hash is stored)."""
    if admin == (organisation_id is not None):
        fail("give either --org ORGANISATION_ID or --admin")
    gateway = load_gateway(config_path, announce=True)
    with gateway.read() as session:
        if organisation_id is not None and session.get(Organisation, organisation_id) is None:
            fail(f"organisation {organisation_id} does not exist")
        role = ApiRole.ADMIN if admin else ApiRole.NETWORK
        client, token = ApiClient.issue(name or f"{role} token", role, organisation_id)
        session.add(client)
        session.flush()
        client_id = client.id
        audit.record(session, Actor.command_line(), audit.TOKEN_CREATE, audit.API_TOKEN, client_id,
                     after=token_snapshot(client))
    # the notice on stderr, the token alone on stdout: TOKEN=$(peppol-ap tokens create ...) works
    click.echo(f"token {client_id} ({role}) created; store it now, it is not shown again", err=True)
    click.echo(token)


@tokens.command("list")
@config_option
def list_tokens(config_path: str | None) -> None:
    """List tokens (prefix, role, organisation, state)."""
    gateway = load_gateway(config_path, announce=True)
    with gateway.read() as session:
        for client in session.scalars(select(ApiClient).order_by(ApiClient.id)):
            state = "active" if client.active else f"revoked {client.revoked_at:%Y-%m-%d}"
            org = client.organisation_id if client.organisation_id is not None else "-"
            click.echo(f"{client.id:>5}  {client.token_prefix}…  {client.role:<8} org {org!s:<6} {state}  "
                       f"{client.name}")


@tokens.command("revoke")
@config_option
@click.argument("token_id", type=int)
def revoke(config_path: str | None, token_id: int) -> None:
    """Revoke a token by its id (from `tokens list`)."""
    gateway = load_gateway(config_path, announce=True)
    with gateway.read() as session:
        client = session.get(ApiClient, token_id)
        if client is None:
            fail(f"token {token_id} does not exist")
        if client.active:
            before = token_snapshot(client)
            client.revoked_at = datetime.now(UTC)
            audit.record(session, Actor.command_line(), audit.TOKEN_REVOKE, audit.API_TOKEN, client.id, before=before,
                         after=token_snapshot(client))
    click.echo(f"token {token_id} revoked")
