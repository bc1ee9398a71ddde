"""Run the WSGI app under gunicorn (chunked request bodies arrive terminated, as AS4 needs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from gunicorn.app.base import BaseApplication

from accesspoint.app import create_app
from accesspoint.config import load_config
from accesspoint.logs import setup_logging


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


def run(config_path: str | None, overrides: Mapping[str, str], workers: int) -> None:
    os.environ.update(overrides)
    cfg = load_config(config_path)
    setup_logging(cfg.log.level, cfg.log.format)
    app = create_app(cfg)  # before forking: configuration errors stop start-up once, with one line
    engine = app.extensions["gateway"].engine

    def post_fork(_server: Any, _worker: Any) -> None:
        # The migration ran in the master; a forked worker must not share its pooled connections.
        engine.dispose(close=False)

    bind = f"{cfg.server.host}:{cfg.server.port}"
    print(f"peppol-ap {cfg.environment} environment listening on http://{bind}  (health: /health)", flush=True)
    # no "accesslog": the app writes the access log itself, as JSON with the request id (web/access_log.py)
    options = {"bind": bind, "workers": workers, "timeout": 300, "post_fork": post_fork}
    _Gunicorn(app, options).run()
