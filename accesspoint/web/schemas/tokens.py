"""API tokens made, listed and revoked through the admin API (accesspoint.flows.tokens, accesspoint.store.scopes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from accesspoint.store.scopes import ApiRole, Scope
from accesspoint.web.schemas.common import Instant, ListQuery, Page, Schema, model_examples, page_examples

MAX_ID = 2**31 - 1  # ids are 32-bit integer columns

TOKEN_EXAMPLE = "pap_q3Vb0c1X2m9YtN6pL8aK4sD7fG5hJ0eR1uW2iO3yT4"  # noqa: S105 (the documentation's example)
TokenState = Literal["active", "expired", "revoked"]


class TokenRequest(BaseModel):
    """A token to make: without `scopes` it gets every scope of its role, without `expires_at` it never expires"""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "acme erp", "role": "network", "organisation_id": 1, "scopes": ["outbound:write", "outbound:read"],
         "expires_at": "2027-03-01T00:00:00Z"},
        {"name": "support desk", "role": "admin", "scopes": ["support"]},
    ]})

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = Field(
        description="what the token is for; the access and audit logs name the caller by it")
    role: ApiRole = Field(description="`network`: the network API of one organisation; `admin`: the admin API")
    organisation_id: int | None = Field(None, ge=1, le=MAX_ID, description="the organisation a network token acts "
                                                                           "for (required for `network`)")
    scopes: list[Scope] | None = Field(None, min_length=1, description="scopes of the role; left out: all of them")
    expires_at: Instant | None = Field(None, description="when the token stops working (in the future)")


class TokenQuery(ListQuery):
    organisation_id: int | None = Field(None, ge=1, le=MAX_ID, description="only the tokens of this organisation")


class Token(Schema):
    """A token as lists show it: its prefix, never the token or its hash"""

    model_config = model_examples({
        "id": 7, "name": "acme erp", "role": "network", "organisation_id": 1, "scopes": ["outbound:write"],
        "token_prefix": TOKEN_EXAMPLE[:8], "state": "active", "created_at": "2026-12-01T09:00:00Z",
        "expires_at": "2027-03-01T00:00:00Z", "last_used_at": "2026-12-03T14:05:00Z", "revoked_at": None,
    })

    id: int
    name: str
    role: ApiRole
    organisation_id: int | None
    scopes: list[Scope]
    token_prefix: str = Field(description="the token's first characters, to tell tokens apart")
    state: TokenState
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="when it was last used, to within a few minutes")
    revoked_at: datetime | None


class TokenCreated(Token):
    """The new token, shown in this answer only: store it now"""

    model_config = model_examples({
        **Token.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
        "last_used_at": None, "token": TOKEN_EXAMPLE,
    })

    token: str = Field(description="the bearer token (`Authorization: Bearer <token>`); only its sha256 is kept")


class TokenPage(Page):
    model_config = page_examples(Token, "/admin/api/tokens")

    items: list[Token]
