"""Access to the process's Gateway from inside a request."""

from __future__ import annotations

from flask import current_app

from accesspoint.gateway import Gateway


def gateway() -> Gateway:
    return current_app.extensions["gateway"]
