"""`GET /api/v1/openapi.json` (network API) and `GET /admin/api/openapi.json` (admin API): the OpenAPI 3.1
documents generated from the models of the views (accesspoint.web.apidoc).

A document needs only the routes, not a gateway: it is generated from an app that holds just the API's
blueprints, so tests load it at collection time as clients download it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue

from accesspoint.web import (
    admin,
    admin_audit,
    admin_messages,
    admin_tokens,
    api_events,
    api_inbound,
    api_outbound,
    api_webhooks,
)
from accesspoint.web.apidoc import ADMIN, NETWORK

NETWORK_BLUEPRINTS = (api_outbound.blueprint, api_inbound.blueprint, api_webhooks.blueprint, api_events.blueprint)
ADMIN_BLUEPRINTS = (admin.blueprint, admin_audit.blueprint, admin_messages.blueprint, admin_tokens.blueprint)

blueprint = Blueprint("openapi", __name__)


def _routes(blueprints: tuple[Blueprint, ...]) -> Flask:
    app = Flask(__name__)
    for each in blueprints:
        app.register_blueprint(each)
    return app


@cache
def openapi_document() -> dict[str, Any]:
    return NETWORK.document(_routes(NETWORK_BLUEPRINTS))


@cache
def admin_openapi_document() -> dict[str, Any]:
    return ADMIN.document(_routes(ADMIN_BLUEPRINTS))


@blueprint.get("/api/v1/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(openapi_document())


@blueprint.get("/admin/api/openapi.json")
def admin_openapi_json() -> ResponseReturnValue:
    """Public like the network document: it says what the API takes, nothing about the data behind it."""
    return jsonify(admin_openapi_document())
