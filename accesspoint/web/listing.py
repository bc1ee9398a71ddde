"""Query parameters shared by the list endpoints: `limit`, opaque keyset `cursor`, `since`, and their OpenAPI.

Lists are ordered by (created_at, id) and paged by keyset, not offset: a page boundary stays put while new rows
arrive, and a page costs the same at the millionth row as at the first. The cursor is the position of the last
item returned, base64url-encoded JSON; clients treat it as opaque and pass it back unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from flask import request
from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from accesspoint.web.problems import ProblemError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def bad_request(detail: str, parameter: str) -> ProblemError:
    return ProblemError(400, "Bad Request", detail, parameter=parameter)


def limit_parameter() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_request(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw!r}", "limit")
    return int(raw)


def parse_timestamp(raw: str, parameter: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"{parameter} must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z, "
                          f"not {raw!r}", parameter) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise bad_request(f"{parameter} {raw!r} has no time zone; add Z or an offset such as +01:00", parameter)
    return value


def since_parameter() -> datetime | None:
    raw = request.args.get("since")
    return None if raw is None else parse_timestamp(raw, "since")


def encode_cursor(created_at: datetime, key: str | int, order: str) -> str:
    raw = json.dumps([created_at.isoformat(), key, order], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def cursor_parameter(order: str, key_type: type) -> tuple[datetime, Any] | None:
    """The (created_at, key) position of `?cursor=`, None without one; a cursor of another order is refused."""
    raw = request.args.get("cursor")
    if raw is None:
        return None
    invalid = bad_request("cursor is not one this API returned; pass next_cursor back unchanged", "cursor")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        stamp, key, cursor_order = decoded
        position = datetime.fromisoformat(stamp)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(key, key_type) or isinstance(key, bool) or position.tzinfo is None:
        raise invalid
    if cursor_order != order:
        raise bad_request(f"this cursor pages {cursor_order!r} order, the request asks for {order!r}", "cursor")
    return position, key


def after(created: InstrumentedAttribute[Any], key: InstrumentedAttribute[Any], position: tuple[datetime, Any],
          newest_first: bool) -> ColumnElement[bool]:
    """Rows strictly beyond `position` in (created_at, key) order."""
    stamp, last = position
    if newest_first:
        return or_(created < stamp, and_(created == stamp, key < last))
    return or_(created > stamp, and_(created == stamp, key > last))


# --- OpenAPI pieces ---------------------------------------------------------------------------------

def problem_responses(*statuses: int) -> dict[str, Any]:
    descriptions = {
        400: "the request is not valid (the problem names the parameter)",
        401: "no token, or an unknown, revoked or expired token",
        403: "the token may not use this endpoint (a token of the other role, or without the scope it needs)",
        404: "no such resource for this organisation",
        409: "the request conflicts with the resource's state",
        415: "the request body is not JSON",
        422: "the request is well-formed but refused (the problem names the parameter and why)",
    }
    return {
        str(status): {
            "description": descriptions[status],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


LIMIT_PARAMETER = {
    "name": "limit", "in": "query", "required": False,
    "description": f"items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
}
CURSOR_PARAMETER = {
    "name": "cursor", "in": "query", "required": False,
    "description": "`next_cursor` of the previous page, unchanged (opaque)",
    "schema": {"type": "string"},
}
SINCE_PARAMETER = {
    "name": "since", "in": "query", "required": False,
    "description": "only items created at or after this instant (RFC 3339, with a time zone)",
    "schema": {"type": "string", "format": "date-time"},
}
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
TIMESTAMP = {"type": "string", "format": "date-time"}


def page_schema(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": ref(item)},
            "next_cursor": {"type": ["string", "null"], "description": "null on the last page"},
        },
    }
