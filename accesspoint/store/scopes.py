"""Roles and scopes of API tokens: what a bearer token may do.

A token has one role, which picks the API it may use (network: /api/v1 for one organisation; admin: /admin/api),
and one or more scopes of that role, which pick the routes. A token made without naming scopes gets the full set
of its role. The admin role's `admin` scope includes everything `support` may do.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ApiRole(StrEnum):
    NETWORK = "network"
    ADMIN = "admin"


class Scope(StrEnum):
    # network tokens, one organisation's data
    OUTBOUND_READ = "outbound:read"  # list and read outbound messages and receipts, receiver lookups
    OUTBOUND_WRITE = "outbound:write"  # submit documents, retry failed ones
    INBOUND_READ = "inbound:read"  # list and read received documents and their receipts
    INBOUND_ACK = "inbound:ack"  # mark received documents collected
    EVENTS_READ = "events:read"  # the event feed
    WEBHOOKS = "webhooks"  # manage webhook subscriptions (their secrets included)
    # admin tokens
    ADMIN = "admin"  # everything in /admin/api, tokens included
    SUPPORT = "support"  # read everything, retry and resync; no changes to organisations, participants or tokens

    @property
    def role(self) -> ApiRole:
        return ApiRole.ADMIN if self in ADMIN_SCOPES else ApiRole.NETWORK


ADMIN_SCOPES = (Scope.ADMIN, Scope.SUPPORT)
NETWORK_SCOPES = tuple(scope for scope in Scope if scope not in ADMIN_SCOPES)
# what a token of the role gets when no scopes are named (and what tokens made before scopes existed got)
FULL_SCOPES: dict[ApiRole, tuple[Scope, ...]] = {ApiRole.NETWORK: NETWORK_SCOPES, ApiRole.ADMIN: (Scope.ADMIN,)}
# scopes that grant more than themselves
_IMPLIED: dict[str, frozenset[Scope]] = {Scope.ADMIN: frozenset({Scope.SUPPORT})}


def grants(held: Iterable[str], needed: Scope) -> bool:
    """Do the scopes a token holds allow what `needed` allows? (Plain strings: a Scope is its value as a str.)"""
    return any(scope == needed or needed in _IMPLIED.get(scope, ()) for scope in held)


def scopes_for(role: ApiRole, wanted: Iterable[str] | None) -> list[Scope]:
    """The scopes to give a new token of `role`: `wanted` checked and in canonical order, or the role's full set.
    Raises ValueError naming an unknown scope or one of the other role."""
    if wanted is None:
        return list(FULL_SCOPES[role])
    chosen: set[Scope] = set()
    for name in wanted:
        try:
            scope = Scope(name)
        except ValueError:
            raise ValueError(f"unknown scope {name!r} (known: {', '.join(Scope)})") from None
        if scope.role != role:
            allowed = ", ".join(s for s in Scope if s.role == role)
            raise ValueError(f"scope {name!r} is not one of a {role} token (those are: {allowed})")
        chosen.add(scope)
    if not chosen:
        raise ValueError(f"give at least one scope, or none at all for the full set of a {role} token")
    return [scope for scope in Scope if scope in chosen]
