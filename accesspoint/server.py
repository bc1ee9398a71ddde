"""Run the WSGI app under gunicorn (chunked request bodies arrive terminated, as AS4 needs).

Concurrency: `server.workers` processes (0: one per CPU core) of the gthread worker with `server.threads` threads
each, so a slow request holds one slot, not the process: /health, AS4 and the APIs keep answering. gthread also
waits for a request's first bytes in its poller, not in a thread (a client that connects and stays silent costs
no slot).

A request body is cut off with 408 when no byte arrives for `server.read_timeout_seconds` (the socket's timeout,
per receive) or the whole body has not arrived after `server.body_timeout_seconds` (a watchdog shuts the socket's
reading side, which ends a receive that a client trickling a byte at a time keeps alive). gunicorn itself has no
body timeout: its `timeout` watches worker processes, not requests.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gunicorn.app.base import BaseApplication
from werkzeug.exceptions import RequestTimeout

from accesspoint.app import create_app
from accesspoint.config import Config, load_config
from accesspoint.logs import setup_logging

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, options: Mapping[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app


class _TimedBody:
    """`wsgi.input` of one request, with the idle and whole-body limits; a read past either raises RequestTimeout."""

    def __init__(self, stream: Any, sock: socket.socket, idle: float, total: float) -> None:
        self._stream = stream
        self._sock = sock
        self.expired = False
        sock.settimeout(idle)
        self._watchdog = threading.Timer(total, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        self.expired = True
        try:
            self._sock.shutdown(socket.SHUT_RD)  # a blocked receive returns at once, as at end of input
        except OSError:
            pass  # already closed

    def cancel(self) -> None:
        self._watchdog.cancel()

    def _guarded(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            data = read(*args)
        except Exception as exc:
            if self.expired or isinstance(exc, TimeoutError):
                raise self._timeout() from exc
            raise
        if self.expired:  # what arrived before the cut is not the whole body
            raise self._timeout()
        return data

    def _timeout(self) -> RequestTimeout:
        return RequestTimeout("the request body did not arrive in time; send it again")

    def read(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.read, size)  # type: ignore[no-any-return]

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.readline, size)  # type: ignore[no-any-return]

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def body_deadlines(app: WsgiApp, idle: float, total: float) -> WsgiApp:
    """WSGI middleware putting `_TimedBody` limits on every request that has a body."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        has_body = environ.get("CONTENT_LENGTH") not in (None, "", "0") or \
            "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if sock is None or not has_body:
            return app(environ, start_response)
        body = _TimedBody(environ["wsgi.input"], sock, idle, total)
        environ["wsgi.input"] = body
        try:
            return app(environ, start_response)  # our views read their whole body before they answer
        finally:
            body.cancel()

    return wrapped


def gunicorn_options(cfg: Config, post_fork: Callable[..., None]) -> dict[str, Any]:
    server = cfg.server
    return {
        "bind": f"{server.host}:{server.port}",
        "workers": server.worker_processes,
        "worker_class": "gthread",
        "threads": server.threads,
        # watches worker processes (a gthread worker's main loop beats while its threads work), not requests
        "timeout": 120,
        "graceful_timeout": 20,
        # no "accesslog": the app writes the access log itself, as JSON with the request id (web/access_log.py)
        # gunicorn's runtime control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl): a second gateway
        # on the same host would take it over from the first; we manage processes with signals instead
        "control_socket_disable": True,
        "post_fork": post_fork,
    }


def run(config_path: str | None, overrides: Mapping[str, str]) -> None:
    os.environ.update(overrides)
    cfg = load_config(config_path)
    setup_logging(cfg.log.level, cfg.log.format)
    app = create_app(cfg)  # before forking: configuration errors stop start-up once, with one line
    engine = app.extensions["gateway"].engine

    def post_fork(_server: Any, _worker: Any) -> None:
        # The migration ran in the master; a forked worker must not share its pooled connections.
        engine.dispose(close=False)

    options = gunicorn_options(cfg, post_fork)
    print(f"peppol-ap {cfg.environment} environment listening on http://{options['bind']}  (health: /health; "
          f"{options['workers']} process(es) x {options['threads']} threads)", flush=True)
    served = body_deadlines(app, cfg.server.read_timeout_seconds, cfg.server.body_timeout_seconds)
    _Gunicorn(served, options).run()
