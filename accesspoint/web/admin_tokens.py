"""`/admin/api/tokens`: API tokens made, listed and revoked by admins (the `admin` scope; `support` may read them).

    POST   /tokens   {name, role, organisation_id?, scopes?, expires_at?}  -> 201, the token shown once
    GET    /tokens[?organisation_id=&limit=&cursor=]                     -> {items, next}, oldest first
    GET    /tokens/{id}
    DELETE /tokens/{id}                                                  -> 204 (revoked; again: 204, no change)

Only the token's sha256 is stored; an answer shows the prefix, never the token (but once) or its hash. Each change
writes an audit record without the token (accesspoint.flows.tokens).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from accesspoint.flows import tokens
from accesspoint.flows.tokens import TokenNotFound, TokenRequestError
from accesspoint.store.audit import Actor
from accesspoint.store.models import ApiClient
from accesspoint.store.scopes import ApiRole, Scope
from accesspoint.web.apidoc import ADMIN, LOCATION_HEADER, int32_path_ids
from accesspoint.web.auth import admin_guard, current_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas.tokens import Token, TokenCreated, TokenPage, TokenQuery, TokenRequest, TokenState

blueprint = Blueprint("admin_tokens", __name__, url_prefix="/admin/api/tokens")
blueprint.before_request(admin_guard())
blueprint.before_request(int32_path_ids)

TAGS = ("tokens",)


def _token_document(client: ApiClient, now: datetime) -> Token:
    state: TokenState = "revoked" if not client.active else "expired" if client.expired(now) else "active"
    return Token(id=client.id, name=client.name, role=ApiRole(client.role), organisation_id=client.organisation_id,
                 scopes=[Scope(s) for s in client.scopes], token_prefix=client.token_prefix, state=state,
                 created_at=client.created_at, expires_at=client.expires_at, last_used_at=client.last_used_at,
                 revoked_at=client.revoked_at)


def _not_found(token_id: int) -> ProblemError:
    return ProblemError(404, "Not Found", f"token {token_id} does not exist")


@blueprint.post("")
@ADMIN.operation("createToken", tags=TAGS, json=TokenRequest, responses={201: TokenCreated}, problems=(401, 403),
                 extra={"responses": {"201": {"headers": LOCATION_HEADER}}})
def create_token(json: TokenRequest) -> ResponseReturnValue:
    """Make an API token; the answer is the only place it is shown"""
    try:
        issued = tokens.issue(gateway(), Actor.of_client(current_client()), name=json.name, role=json.role,
                              organisation_id=json.organisation_id, scopes=json.scopes, expires_at=json.expires_at)
    except TokenRequestError as exc:
        raise ProblemError(422, "Unprocessable Content", f"{exc.field}: {exc.detail}", parameter=exc.field,
                           errors=[{"field": exc.field, "message": exc.detail}]) from None
    created = TokenCreated(**_token_document(issued.client, datetime.now(UTC)).model_dump(), token=issued.token)
    # the answer holds a secret: no cache may keep it
    return created, 201, {"Location": url_for(".get_token", token_id=created.id), "Cache-Control": "no-store"}


@blueprint.get("")
@ADMIN.operation("listTokens", tags=TAGS, query=TokenQuery, responses={200: TokenPage}, problems=(401, 403))
def list_tokens(query: TokenQuery) -> ResponseReturnValue:
    """Every API token, oldest first (without the tokens)"""
    rows = select(ApiClient)
    if query.organisation_id is not None:
        rows = rows.where(ApiClient.organisation_id == query.organisation_id)
    with gateway().read() as session:
        clients, next_page = fetch_page(session, rows, query, created=ApiClient.created_at, key=ApiClient.id,
                                        newest_first=False, key_type=int)
    now = datetime.now(UTC)
    return TokenPage(items=[_token_document(c, now) for c in clients], next=next_page), 200, link_header(next_page)


@blueprint.get("/<int:token_id>")
@ADMIN.operation("getToken", tags=TAGS, responses={200: Token}, problems=(401, 403, 404))
def get_token(token_id: int) -> ResponseReturnValue:
    """One API token (without the token)"""
    with gateway().read() as session:
        client = session.get(ApiClient, token_id)
    if client is None:
        raise _not_found(token_id)
    return _token_document(client, datetime.now(UTC))


@blueprint.delete("/<int:token_id>")
@ADMIN.operation("revokeToken", tags=TAGS, responses={204: None}, problems=(401, 403, 404),
                 extra={"responses": {"204": {"description": "revoked (also when it was revoked already)"}}})
def revoke_token(token_id: int) -> ResponseReturnValue:
    """Revoke an API token: from now on it is refused with 401"""
    try:
        tokens.revoke(gateway(), Actor.of_client(current_client()), token_id)
    except TokenNotFound:
        raise _not_found(token_id) from None
    return "", 204
