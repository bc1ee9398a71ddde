"""`peppol-ap tokens`: API tokens for the network (per organisation) and for admins, with scopes and an expiry."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click
from sqlalchemy import select

from accesspoint.cli.common import config_option, fail, load_gateway
from accesspoint.flows import tokens as token_flow
from accesspoint.flows.tokens import TokenNotFound, TokenRequestError
from accesspoint.store.audit import Actor
from accesspoint.store.models import ApiClient
from accesspoint.store.scopes import ApiRole, Scope

_DURATION = re.compile(r"(\d+)([dh])")
_UNITS = {"d": "days", "h": "hours"}


def parse_expiry(text: str, now: datetime) -> datetime:
    """`90d` / `12h` from `now`, or an ISO 8601 date (00:00 UTC that day) or date and time (UTC unless it names a
    zone)."""
    text = text.strip()
    try:
        if match := _DURATION.fullmatch(text):
            return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration (90d, 12h) nor an ISO date or date and time "
                                 "(2027-03-01, 2027-03-01T12:00:00+01:00)") from None
    except OverflowError:
        raise click.BadParameter(f"{text!r} lies beyond the year 9999") from None


def _state(client: ApiClient, now: datetime) -> str:
    if not client.active:
        return f"revoked {client.revoked_at:%Y-%m-%d}"
    if client.expires_at is None:
        return "active, no expiry"
    return f"{'expired' if client.expired(now) else 'active, expires'} {client.expires_at:%Y-%m-%d %H:%M}Z"


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens."""


@tokens.command("create")
@config_option
@click.option("--org", "organisation_id", type=int, help="Organisation id: a network token for its API calls.")
@click.option("--admin", "admin", is_flag=True, help="An admin token for /admin/api.")
@click.option("--name", default="", help="What the token is for (shown in listings).")
@click.option("--scope", "scopes", multiple=True, type=click.Choice([str(s) for s in Scope]),
              help="What the token may do; repeat for several. Default: everything its role may do "
                   "(admin tokens: admin; `support` reads everything and may resync, but changes nothing else).")
@click.option("--expires", help="When the token stops working: a duration from now (90d, 12h) or an ISO date or "
                                "date and time (2027-03-01 is 00:00 UTC that day). Default: never.")
def create(config_path: str | None, organisation_id: int | None, admin: bool, name: str, scopes: tuple[str, ...],
           expires: str | None) -> None:
    """Create a token and print it once (only its hash is stored)."""
    if admin == (organisation_id is not None):
        fail("give either --org ORGANISATION_ID or --admin")
    expires_at = parse_expiry(expires, datetime.now(UTC)) if expires is not None else None
    role = ApiRole.ADMIN if admin else ApiRole.NETWORK
    gateway = load_gateway(config_path, announce=True)
    try:
        issued = token_flow.issue(gateway, Actor.command_line(), name=name or f"{role} token", role=role,
                                  organisation_id=organisation_id, scopes=scopes or None, expires_at=expires_at)
    except TokenRequestError as exc:
        fail(exc.detail)
    client = issued.client
    until = f", expires {client.expires_at:%Y-%m-%d %H:%M}Z" if client.expires_at else ""
    # the notice on stderr, the token alone on stdout: TOKEN=$(peppol-ap tokens create ...) works
    click.echo(f"token {client.id} ({role}; {' '.join(client.scopes)}{until}) created; store it now, it is not "
               "shown again", err=True)
    click.echo(issued.token)


@tokens.command("list")
@config_option
def list_tokens(config_path: str | None) -> None:
    """List tokens (prefix, role, organisation, scopes, state and expiry, last use)."""
    gateway = load_gateway(config_path, announce=True)
    now = datetime.now(UTC)
    with gateway.read() as session:
        for client in session.scalars(select(ApiClient).order_by(ApiClient.id)):
            org = client.organisation_id if client.organisation_id is not None else "-"
            used = f"used {client.last_used_at:%Y-%m-%d %H:%M}Z" if client.last_used_at else "never used"
            click.echo(f"{client.id:>5}  {client.token_prefix}…  {client.role:<8} org {org!s:<6} {_state(client, now)}"
                       f"  {used}  [{' '.join(client.scopes)}]  {client.name}")


@tokens.command("revoke")
@config_option
@click.argument("token_id", type=int)
def revoke(config_path: str | None, token_id: int) -> None:
    """Revoke a token by its id (from `tokens list`)."""
    gateway = load_gateway(config_path, announce=True)
    try:
        token_flow.revoke(gateway, Actor.command_line(), token_id)
    except TokenNotFound as exc:
        fail(str(exc))
    click.echo(f"token {token_id} revoked")
