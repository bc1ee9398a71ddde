"""`/admin/api/tokens`: API tokens made, listed and revoked by admins (the `admin` scope; `support` may list them).

    POST   /tokens   {name, role, organisation_id?, scopes?, expires_at?}  -> 201, the token shown once
    GET    /tokens[?organisation_id=&limit=&cursor=]                     -> {items, next}, oldest first
    GET    /tokens/{id}
    DELETE /tokens/{id}                                                  -> 204 (revoked; again: 204, no change)

Only the token's sha256 is stored; a listing shows the prefix, never the token or its hash. Each change writes an
audit record without the token (accesspoint.flows.tokens).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from flask import Blueprint, Response, jsonify, request, url_for
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from accesspoint.flows import tokens
from accesspoint.flows.tokens import TokenNotFound, TokenRequestError
from accesspoint.store.audit import Actor
from accesspoint.store.models import ApiClient
from accesspoint.store.scopes import ApiRole, Scope
from accesspoint.web.auth import admin_guard, current_client
from accesspoint.web.context import gateway
from accesspoint.web.json_body import invalid, parse_body
from accesspoint.web.listing import after, bad_request, cursor_parameter, encode_cursor, limit_parameter
from accesspoint.web.problems import ProblemError

blueprint = Blueprint("admin_tokens", __name__, url_prefix="/admin/api")
blueprint.before_request(admin_guard())

ORDER = "oldest"


class TokenRequest(BaseModel):
    """A token to make. Without `scopes`, the full set of the role; without `expires_at`, it never expires."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [
        {"name": "acme erp", "role": "network", "organisation_id": 1, "scopes": ["outbound:write", "outbound:read"],
         "expires_at": "2027-03-01T00:00:00Z"},
        {"name": "support desk", "role": "admin", "scopes": ["support"]},
    ]})

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    role: ApiRole
    organisation_id: int | None = Field(default=None, description="the organisation a network token acts for")
    scopes: list[Scope] | None = Field(default=None, min_length=1)
    expires_at: AwareDatetime | None = None


class TokenInfo(BaseModel):
    """A token as listings show it: no token, no hash."""

    id: int
    name: str
    role: ApiRole
    organisation_id: int | None
    scopes: list[Scope]
    token_prefix: str = Field(description="the token's first characters, to tell tokens apart")
    state: Literal["active", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="when it was last used, to within a few minutes")
    revoked_at: datetime | None

    @classmethod
    def of(cls, client: ApiClient, now: datetime) -> TokenInfo:
        state: Literal["active", "expired", "revoked"] = (
            "revoked" if not client.active else "expired" if client.expired(now) else "active")
        return cls(id=client.id, name=client.name, role=ApiRole(client.role), organisation_id=client.organisation_id,
                   scopes=[Scope(s) for s in client.scopes], token_prefix=client.token_prefix, state=state,
                   created_at=client.created_at, expires_at=client.expires_at, last_used_at=client.last_used_at,
                   revoked_at=client.revoked_at)


class IssuedToken(TokenInfo):
    token: str = Field(description="the bearer token: shown in this answer only, store it now")


class TokenPage(BaseModel):
    items: list[TokenInfo]
    next: str | None = Field(description="the cursor of the next page (pass it as ?cursor=); null on the last")


def _actor() -> Actor:
    return Actor.of_client(current_client())


@blueprint.post("/tokens")
def create_token() -> tuple[Response, int, dict[str, str]]:
    wanted = parse_body(TokenRequest)
    try:
        issued = tokens.issue(gateway(), _actor(), name=wanted.name, role=wanted.role,
                              organisation_id=wanted.organisation_id, scopes=wanted.scopes,
                              expires_at=wanted.expires_at)
    except TokenRequestError as exc:
        raise invalid(exc.field, exc.detail) from None
    info = TokenInfo.of(issued.client, datetime.now(UTC))
    body = IssuedToken(**info.model_dump(), token=issued.token)
    # the answer holds a secret: no cache may keep it
    headers = {"Location": url_for(".get_token", token_id=issued.client.id), "Cache-Control": "no-store"}
    return jsonify(body.model_dump(mode="json")), 201, headers


@blueprint.get("/tokens")
def list_tokens() -> Response:
    limit = limit_parameter()
    position = cursor_parameter(ORDER, int)
    query = select(ApiClient)
    raw_organisation = request.args.get("organisation_id")
    if raw_organisation is not None:
        if not raw_organisation.isascii() or not raw_organisation.isdigit():
            raise bad_request(f"organisation_id must be a whole number, not {raw_organisation!r}", "organisation_id")
        query = query.where(ApiClient.organisation_id == int(raw_organisation))
    if position is not None:
        query = query.where(after(ApiClient.created_at, ApiClient.id, position, newest_first=False))
    query = query.order_by(ApiClient.created_at, ApiClient.id).limit(limit + 1)
    with gateway().read() as session:
        found = list(session.scalars(query))
    page, now = found[:limit], datetime.now(UTC)
    cursor = encode_cursor(page[-1].created_at, page[-1].id, ORDER) if len(found) > limit else None
    response = jsonify(TokenPage(items=[TokenInfo.of(c, now) for c in page], next=cursor).model_dump(mode="json"))
    if cursor is not None:
        response.headers["Link"] = f'<{url_for(".list_tokens", **{**request.args, "cursor": cursor})}>; rel="next"'
    return response


@blueprint.get("/tokens/<int:token_id>")
def get_token(token_id: int) -> Response:
    with gateway().read() as session:
        client = session.get(ApiClient, token_id)
    if client is None:
        raise ProblemError(404, "Not Found", f"token {token_id} does not exist")
    return jsonify(TokenInfo.of(client, datetime.now(UTC)).model_dump(mode="json"))


@blueprint.delete("/tokens/<int:token_id>")
def revoke_token(token_id: int) -> tuple[str, int]:
    try:
        tokens.revoke(gateway(), _actor(), token_id)
    except TokenNotFound as exc:
        raise ProblemError(404, "Not Found", str(exc)) from None
    return "", 204
