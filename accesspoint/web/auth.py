"""Bearer tokens for the network API (per organisation) and the admin API (admin role)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from sqlalchemy import select

from accesspoint.store.models import ApiClient, ApiRole
from accesspoint.store.tokens import hash_token
from accesspoint.web.context import gateway
from accesspoint.web.problems import ProblemError

F = TypeVar("F", bound=Callable[..., Any])


def _authenticate() -> ApiClient:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "Unauthorized", "send the API token as 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})
    with gateway().read() as session:
        client = session.scalar(select(ApiClient).where(ApiClient.token_hash == hash_token(token.strip())))
        if client is None or not client.active:
            raise ProblemError(401, "Unauthorized", "the API token is unknown or revoked",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        session.expunge(client)
    return client


def require_client(role: ApiRole = ApiRole.NETWORK) -> Callable[[F], F]:
    """View decorator: the caller must hold an active token of `role`; the client is in `flask.g.api_client`.

    Network tokens belong to one organisation and see only its data; admin tokens manage everything but do not
    act as an organisation on the network API.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            client = _authenticate()
            if client.role != role:
                raise ProblemError(403, "Forbidden", f"this endpoint needs a {role} token")
            if role == ApiRole.NETWORK and client.organisation_id is None:
                raise ProblemError(403, "Forbidden", "this network token belongs to no organisation")
            g.api_client = client
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def current_client() -> ApiClient:
    return g.api_client
