"""JSON request bodies of the APIs (network and admin): bounded in size and depth before any view reads them.

`install` puts the bounds on every JSON request to an API path, whatever view takes it: a body over
`[api] max_json_bytes` is a 413 problem, refused from its Content-Length before a byte is read and, for a chunked
body, once reading passes the limit (one byte more than allowed is all that is read); a document nested deeper than
`[api] max_json_depth` is a 400 problem, not the RecursionError (500) the parser would raise on a few thousand
brackets. The views get their bodies from spectree (accesspoint.web.apidoc), which parses with `request.get_json`,
so through the provider below. Bodies that are not JSON keep their own limits: an outbound document (XML) is
bounded by `[as4] max_payload_bytes`, an import (CSV) is streamed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from accesspoint.config import ApiSection
from accesspoint.web.problems import ProblemError, is_api_request


def _too_large(limit: int) -> ProblemError:
    return ProblemError(413, "Content Too Large", f"the JSON body is larger than {limit} bytes (api.max_json_bytes)")


def _too_deep(limit: int) -> ProblemError:
    return ProblemError(400, "Bad Request", f"the JSON body is nested deeper than {limit} levels (api.max_json_depth)")


def _deeper_than(document: Any, limit: int) -> bool:
    """Does `document` (parsed JSON) nest objects and arrays more than `limit` levels deep? Iterative: a recursive
    walk would itself run out of stack on the documents it is meant to refuse."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, level = pending.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if level > limit:
            return True
        pending.extend((child, level + 1) for child in children)
    return False


class BoundedJsonProvider(DefaultJSONProvider):
    """Flask's JSON provider, refusing documents nested deeper than `max_depth` with a 400 problem (not a
    ValueError, so that `get_json(silent=True)` cannot turn it into "no body")."""

    def __init__(self, app: Flask, max_depth: int) -> None:
        super().__init__(app)
        self.max_depth = max_depth

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            document = super().loads(s, **kwargs)
        except RecursionError:
            raise _too_deep(self.max_depth) from None
        if _deeper_than(document, self.max_depth):
            raise _too_deep(self.max_depth)
        return document


def install(app: Flask, settings: ApiSection) -> None:
    """Bound every JSON request body of the APIs by `settings`."""
    app.json = BoundedJsonProvider(app, settings.max_json_depth)
    limit = settings.max_json_bytes

    @app.before_request
    def _bound_json_body() -> None:
        if not (is_api_request() and request.is_json):
            return
        if request.content_length is not None:
            if request.content_length > limit:
                raise _too_large(limit)
            return  # werkzeug reads no more than the declared length
        # a chunked body has no length to check up front: read one byte more than allowed to tell (werkzeug stops
        # a stream at max_content_length without saying whether more was coming); the view gets the cached bytes
        request.max_content_length = limit + 1
        if len(request.get_data(cache=True)) > limit:
            raise _too_large(limit)

