"""`GET /api/v1/openapi.json`: one OpenAPI 3.1 document for the whole network API.

Each API module exports `OPENAPI_PATHS` and `OPENAPI_SCHEMAS`; the document is assembled from the modules
listed in API_MODULES, so a path is described next to the view that serves it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from accesspoint import __version__

API_MODULES: tuple[str, ...] = (
    "accesspoint.web.api_inbound",
    "accesspoint.web.api_webhooks",
    "accesspoint.web.api_events",
    "accesspoint.web.api_outbound",
)

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem document",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "required": ["title", "status"],
}

blueprint = Blueprint("openapi", __name__)


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    for name in API_MODULES:
        module = import_module(name)
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "peppol-ap network API",
            "version": __version__,
            "description": "Submit outbound documents, follow their status, collect inbound documents.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@blueprint.get("/api/v1/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(openapi_document())
