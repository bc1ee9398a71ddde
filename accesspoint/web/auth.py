"""Bearer tokens: network tokens (one organisation, /api/v1) and admin tokens (/admin/api), each with scopes.

Every route names the scope it needs (accesspoint.store.scopes); the scope's role is the token role it needs. An
unknown, revoked or expired token is a 401, a token without the scope a 403 that names the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from sqlalchemy import or_, select, update

from accesspoint.store.models import ApiClient, ApiRole
from accesspoint.store.scopes import Scope, grants
from accesspoint.store.tokens import hash_token
from accesspoint.web.context import gateway
from accesspoint.web.problems import ProblemError

F = TypeVar("F", bound=Callable[..., Any])

# `last_used_at` is rewritten at most this often per token: a write on every request would cost a writer lock
# (SQLite) for a value that an admin reads at the scale of days
LAST_USE_RESOLUTION = timedelta(minutes=5)
_READS = ("GET", "HEAD", "OPTIONS")


def _unauthorized(detail: str, error: str | None = "invalid_token") -> ProblemError:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return ProblemError(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


def _note_use(client: ApiClient, now: datetime) -> None:
    if client.last_used_at is not None and now - client.last_used_at < LAST_USE_RESOLUTION:
        return
    # one conditional statement, atomic by itself (so the lock-free idiom), and concurrent requests write once
    with gateway().read() as session:
        session.execute(update(ApiClient).where(
            ApiClient.id == client.id,
            or_(ApiClient.last_used_at.is_(None), ApiClient.last_used_at < now - LAST_USE_RESOLUTION),
        ).values(last_used_at=now))


def _authenticate(now: datetime) -> ApiClient:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send the API token as 'Authorization: Bearer <token>'", error=None)
    with gateway().read() as session:
        client = session.scalar(select(ApiClient).where(ApiClient.token_hash == hash_token(token.strip())))
        if client is None or not client.active:
            raise _unauthorized("the API token is unknown or revoked")
        session.expunge(client)
    if client.expired(now):
        raise _unauthorized(f"the API token {client.token_prefix}… ({client.name}) expired at "
                            f"{client.expires_at:%Y-%m-%dT%H:%M:%SZ}; ask an admin for a new one")
    return client


def authorize(scope: Scope) -> ApiClient:
    """The caller's client if its token is valid, of `scope`'s role and grants `scope`; it is also put in
    `flask.g.api_client`. Raises the 401 or 403 problem otherwise."""
    now = datetime.now(UTC)
    client = _authenticate(now)
    role = scope.role
    if client.role != role:
        raise ProblemError(403, "Forbidden", f"this endpoint needs a token of the {role} role, this one is "
                                             f"of the {client.role} role")
    if role == ApiRole.NETWORK and client.organisation_id is None:
        raise ProblemError(403, "Forbidden", "this network token belongs to no organisation")
    if not grants(client.scopes, scope):
        raise ProblemError(403, "Forbidden", f"this token lacks the scope {scope!s} that this endpoint needs "
                                             f"(it has: {', '.join(client.scopes)})", scope=str(scope))
    _note_use(client, now)
    g.api_client = client
    return client


def require_client(scope: Scope) -> Callable[[F], F]:
    """View decorator: the caller must hold a valid token granting `scope` (see `authorize`).

    Network tokens belong to one organisation and see only its data; admin tokens manage everything but do not
    act as an organisation on the network API.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authorize(scope)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def admin_guard(support_actions: Collection[str] = ()) -> Callable[[], None]:
    """A `before_request` hook for an admin blueprint: reading needs `support` (which `admin` includes), any change
    needs `admin`, except the endpoints named in `support_actions` (e.g. a resync), which `support` may do."""

    def guard() -> None:
        may_support = request.method in _READS or request.endpoint in support_actions
        authorize(Scope.SUPPORT if may_support else Scope.ADMIN)

    return guard


def current_client() -> ApiClient:
    return g.api_client
