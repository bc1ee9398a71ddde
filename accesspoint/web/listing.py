"""The one pagination of every list of both APIs: keyset cursor, `{items, next}` and an RFC 8288 Link header.

Lists are ordered by (created_at, id) and paged by keyset, not offset: a page boundary stays put while new rows
arrive, and a page costs the same at the millionth row as at the first. The cursor is the position of the last
item returned, base64url-encoded JSON; `next` is the request's own URL with the cursor of the next page, so the
filters and the page size carry over and a client only follows it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import request
from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas.common import ListQuery


def bad_request(detail: str, parameter: str) -> ProblemError:
    return ProblemError(400, "Bad Request", detail, parameter=parameter)


def encode_cursor(created_at: datetime, key: str | int, order: str) -> str:
    raw = json.dumps([created_at.isoformat(), key, order], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(raw: str, order: str, key_type: type) -> tuple[datetime, Any]:
    """The (created_at, key) position of a cursor; a cursor of another order is refused."""
    invalid = bad_request("cursor is not one this API returned; follow `next` unchanged", "cursor")
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


def next_url(cursor: str) -> str:
    """The request's URL with `cursor` in place of its own."""
    pairs = [(name, value) for name, value in request.args.items(multi=True) if name != "cursor"]
    return f"{request.path}?{urlencode([*pairs, ('cursor', cursor)])}"


def fetch_page(session: Session, query: Select[Any], params: ListQuery, *, created: InstrumentedAttribute[Any],
               key: InstrumentedAttribute[Any], newest_first: bool, key_type: type = str,
               position_of: Callable[[Any], Any] = lambda row: row) -> tuple[Sequence[Any], str | None]:
    """One page of `query` (rows of `session.execute`, or scalars when it selects one entity) and the URL of the
    next page, None on the last. position_of: the entity of a row that carries `created` and `key`."""
    order = "newest" if newest_first else "oldest"
    if params.cursor is not None:
        query = query.where(after(created, key, decode_cursor(params.cursor, order, key_type), newest_first))
    if newest_first:
        query = query.order_by(created.desc(), key.desc())
    else:
        query = query.order_by(created, key)
    query = query.limit(params.limit + 1)
    rows = list(session.scalars(query) if len(query.column_descriptions) == 1 else session.execute(query))
    page = rows[:params.limit]
    if len(rows) <= params.limit:
        return page, None
    last = position_of(page[-1])
    return page, next_url(encode_cursor(getattr(last, created.key), getattr(last, key.key), order))


def link_header(next_page: str | None) -> dict[str, str]:
    """The RFC 8288 header of a page: a client may follow it without reading the body."""
    return {"Link": f'<{next_page}>; rel="next"'} if next_page else {}
