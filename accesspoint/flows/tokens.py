"""Issue and revoke API tokens, each change with its audit record: one flow for both doors that manage tokens
(`peppol-ap tokens` and `/admin/api/tokens`).

The token itself leaves this module once, in `Issued.token`, for the door to show; the database keeps its sha256
and the audit record its metadata (accesspoint.store.audit.token_snapshot), never the token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from accesspoint.gateway import Gateway
from accesspoint.store import audit
from accesspoint.store.audit import Actor, token_snapshot
from accesspoint.store.models import ApiClient, Organisation
from accesspoint.store.scopes import ApiRole, scopes_for
from accesspoint.store.types import utcnow


class TokenRequestError(ValueError):
    """The token cannot be made as asked; `field` names the part of the request that is wrong."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class TokenNotFound(LookupError):
    def __init__(self, token_id: int) -> None:
        super().__init__(f"token {token_id} does not exist")


@dataclass(frozen=True)
class Issued:
    """A new token: its stored metadata (detached) and the token, to be shown once."""

    client: ApiClient
    token: str


def issue(gateway: Gateway, actor: Actor, *, name: str, role: ApiRole, organisation_id: int | None,
          scopes: Iterable[str] | None = None, expires_at: datetime | None = None) -> Issued:
    """Make a token of `role` (network tokens for `organisation_id`, admin tokens for none) with `scopes` (None: the
    full set of the role) that ends at `expires_at` (None: never). Raises TokenRequestError before anything is
    stored."""
    if role == ApiRole.NETWORK and organisation_id is None:
        raise TokenRequestError("organisation_id", "a network token acts for one organisation: name it")
    if role == ApiRole.ADMIN and organisation_id is not None:
        raise TokenRequestError("organisation_id", "an admin token belongs to no organisation: leave it out")
    try:
        chosen = scopes_for(role, scopes)
    except ValueError as exc:
        raise TokenRequestError("scopes", str(exc)) from None
    if expires_at is not None and expires_at <= utcnow():
        raise TokenRequestError("expires_at", f"{expires_at.isoformat()} has passed; give a time in the future")
    with gateway.write() as session:
        if organisation_id is not None and session.get(Organisation, organisation_id) is None:
            raise TokenRequestError("organisation_id", f"organisation {organisation_id} does not exist")
        client, token = ApiClient.issue(name, role, organisation_id, scopes=chosen, expires_at=expires_at)
        session.add(client)
        session.flush()
        audit.record(session, actor, audit.TOKEN_CREATE, audit.API_TOKEN, client.id, after=token_snapshot(client))
    return Issued(client, token)


def revoke(gateway: Gateway, actor: Actor, token_id: int) -> ApiClient:
    """Revoke the token (from now on it is a 401); revoking a revoked token changes and records nothing. Raises
    TokenNotFound."""
    with gateway.write() as session:
        client = session.get(ApiClient, token_id)
        if client is None:
            raise TokenNotFound(token_id)
        if client.active:
            before = token_snapshot(client)
            client.revoked_at = utcnow()
            audit.record(session, actor, audit.TOKEN_REVOKE, audit.API_TOKEN, client.id, before=before,
                         after=token_snapshot(client))
    return client

