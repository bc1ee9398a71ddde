"""The network API against its own OpenAPI document, with schemathesis: generated requests for every operation,
sent with a valid token of an organisation that has messages, events and webhooks; no answer may be a server
error, and every answer must be a documented status with the documented content type and body schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accesspoint.app import create_app
from accesspoint.config import load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import WebhookSubscription
from accesspoint.web.openapi import openapi_document
from tests.web.conftest import Org, gateway_env, inbound_store, make_org

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def api_gateway(tmp_path_factory: pytest.TempPathFactory, dev_pki: Path, vectors: Path) -> Iterator[Gateway]:
    gw = build_gateway(load_config(None, gateway_env(tmp_path_factory.mktemp("openapi"), dev_pki)))
    yield gw
    gw.engine.dispose()


@pytest.fixture(scope="module")
def api_org(api_gateway: Gateway, vectors: Path) -> Org:
    """An organisation with inbound messages (acked and new, with and without receipts) and a subscription."""
    org = make_org(api_gateway, "Schema AB")
    with api_gateway.read() as session:
        session.add(WebhookSubscription(organisation_id=org.id, url="http://127.0.0.1:9/hook",
                                        secret="whsec_schema-test-secret", events=[]))
    store = inbound_store(api_gateway, vectors)
    for name in ("base-example.xml", "base-creditnote-correction.xml", "vat-category-E.xml"):
        store(org, (vectors / "bis" / name).read_bytes())
    store(org, receipt=False)
    return org


@pytest.fixture(scope="module")
def api_app(api_gateway: Gateway, api_org: Org) -> Flask:
    return create_app(gateway=api_gateway)


# The document is assembled from the API modules without an app, so the schema exists at collection time;
# the requests go to the module's app through WSGI. (schemathesis' fixture-based loader does not run on pytest 9.)
schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_openapi_contract(case, api_app: Flask, api_org: Org) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(base_url="http://localhost", headers=api_org.auth, checks=CHECKS, app=api_app)


def test_the_document_describes_every_network_route(api_app: Flask) -> None:
    document = api_app.test_client().get("/api/v1/openapi.json").get_json()
    described = {path.replace("{", "<").replace("}", ">") for path in document["paths"]}
    routes = {str(rule) for rule in api_app.url_map.iter_rules()
              if str(rule).startswith("/api/v1/") and str(rule) != "/api/v1/openapi.json"}
    normalised = {route.replace("<int:", "<") for route in routes}
    assert normalised <= described, normalised - described
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path} must document the problem for a missing token"


def test_every_operation_needs_a_token(api_app: Flask) -> None:
    """What schemathesis' ignored_auth check does, which its requests transport cannot run against a WSGI app."""
    client = api_app.test_client()
    for path, operations in openapi_document()["paths"].items():
        url = path.replace("{message_id}", "x").replace("{subscription_id}", "1")
        for method in operations:
            response = client.open(url, method=method.upper())
            assert response.status_code == 401, f"{method} {path}"
            assert response.mimetype == "application/problem+json"
