"""The access log: one JSON line per HTTP request (logger `accesspoint.access`), in the application log's format.

Fields: method, path (no query string), status, duration_ms (until the last byte of the body left), size (body
bytes sent), remote_addr, request_id, and when the request was authenticated the caller's organisation_id and
token_name (never the token); an AS4 request adds as4_outcome and ebms_code. Gunicorn's own access log is off
(accesspoint.server), so this is the only one, and it is the same under gunicorn and in tests.

The request id is the caller's `X-Request-Id` when it is short printable ASCII (a proxy or client correlating its
own logs), else a new one; it is returned in the `X-Request-Id` response header and set in `accesspoint.logs.
request_id` for the whole request, so every application log line emitted meanwhile carries it too.

A WSGI middleware rather than Flask hooks: a streamed body (an inbox download) is still being sent after the
view returned, and its size and duration are only known when the server closes it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, g, request

from accesspoint import logs

log = logging.getLogger("accesspoint.access")

HEADER = "X-Request-Id"
# printable ASCII without spaces, at most 128 characters: safe in a response header and a log line
_ACCEPTED_ID = re.compile(r"[\x21-\x7e]{1,128}")
# where the app notes what it learnt about the request (caller, AS4 outcome) for the middleware to log
_FIELDS = "accesspoint.access_log"

StartResponse = Callable[..., Any]


def request_id(incoming: str | None) -> str:
    """The caller's id when acceptable, else a new random one."""
    if incoming is not None and _ACCEPTED_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def note(**fields: Any) -> None:
    """Add fields to the current request's access log line (inside a request)."""
    request.environ.setdefault(_FIELDS, {}).update(fields)


def _note_caller(response: Response) -> Response:
    client = g.get("api_client")
    if client is not None:
        note(organisation_id=client.organisation_id, token_name=client.name)
    return response


class _Body:
    """The response body as the server iterates it, counting bytes. The log line is written once, when the last
    chunk was sent or, for a body not sent to its end (the client went away), when the server closes it.

    The request id is set around each step (the view's call, every chunk, the close) rather than for the whole
    response, so it never outlives the request in the thread, even when a body is abandoned without a close."""

    def __init__(self, request_id: str, body: Iterable[bytes], finished: Callable[[int], None]) -> None:
        self._request_id = request_id
        self._body = body
        self._chunks: Iterator[bytes] | None = None
        self._finished: Callable[[int], None] | None = finished
        self._size = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = logs.request_id.set(self._request_id)
        try:
            if self._chunks is None:
                self._chunks = iter(self._body)
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._finish()
                raise
            self._size += len(chunk)
            return chunk
        finally:
            logs.request_id.reset(token)

    def _finish(self) -> None:
        finished, self._finished = self._finished, None
        if finished is not None:
            finished(self._size)

    def close(self) -> None:
        token = logs.request_id.set(self._request_id)
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            try:
                self._finish()
            finally:
                logs.request_id.reset(token)


class AccessLog:
    """WSGI middleware around the Flask app (see the module docstring)."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ[_FIELDS] = {}
        status: list[int] = []

        def start(status_line: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status[:] = [int(status_line.split(" ", 1)[0])]
            headers = [(k, v) for k, v in headers if k.lower() != HEADER.lower()] + [(HEADER, rid)]
            return start_response(status_line, headers, *args)

        def finished(size: int) -> None:
            fields = {
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": status[0] if status else 500,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "size": size,
                "remote_addr": environ.get("REMOTE_ADDR"),
                **environ[_FIELDS],
            }
            log.info("%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields)

        token = logs.request_id.set(rid)
        try:
            body = self.app(environ, start)
        except BaseException:
            finished(0)
            raise
        finally:
            logs.request_id.reset(token)
        return _Body(rid, body, finished)


def install(app: Flask) -> None:
    """Log every request of `app` (call once, in the app factory)."""
    app.after_request(_note_caller)
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
