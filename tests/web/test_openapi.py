"""The network API against its own OpenAPI document, with schemathesis: the schema's examples and generated
requests for every operation, sent with a valid token of an organisation that has messages, events and webhooks,
checked by every schemathesis check (`--checks all`) but positive_data_acceptance: no server error, every answer a
documented status with the documented content type, headers and body schema, invalid input refused.

positive_data_acceptance is left out on purpose: identifiers carry check digits and documents a structure that no
JSON schema describes, so a request the schema allows may rightly be refused with 422."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accesspoint.app import create_app
from accesspoint.config import load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import WebhookSubscription
from accesspoint.web.openapi import openapi_document
from tests.web.conftest import Org, gateway_env, inbound_store, make_org
from tests.web.openapi_support import assert_documented_with_examples

# generated cases per operation, reported by the last test (`pytest -s` shows the numbers)
CASES: Counter[str] = Counter()


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
# derandomized: the same cases every run, so a CI failure is reproducible (and a pass is not luck)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_keeps_its_openapi_contract(case, api_app: Flask, api_org: Org) -> None:  # type: ignore[no-untyped-def]
    CASES[case.operation.label] += 1
    # the app is known only now (a fixture); given to the schema, every request of the case goes to it through
    # WSGI, the probes of the ignored_auth check too (they would take the requests transport otherwise)
    case.operation.schema.app = api_app
    case.call_and_validate(base_url="http://localhost", headers=api_org.auth, app=api_app,
                           excluded_checks=[positive_data_acceptance])


def test_the_document_describes_every_network_route(api_app: Flask) -> None:
    document = api_app.test_client().get("/api/v1/openapi.json").get_json()
    described = {path.replace("{", "<").replace("}", ">") for path in document["paths"]}
    routes = {str(rule) for rule in api_app.url_map.iter_rules()
              if str(rule).startswith("/api/v1/") and str(rule) != "/api/v1/openapi.json"}
    normalised = {re.sub(r"<\w+(\([^)]*\))?:", "<", route) for route in routes}
    assert normalised <= described, normalised - described
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path} must document the problem for a missing token"


def test_every_operation_has_its_examples_and_problems() -> None:
    assert_documented_with_examples(openapi_document())


def test_every_operation_needs_a_token(api_app: Flask) -> None:
    """What schemathesis' ignored_auth check does, which its requests transport cannot run against a WSGI app."""
    client = api_app.test_client()
    for path, operations in openapi_document()["paths"].items():
        url = path.replace("{message_id}", "x").replace("{subscription_id}", "1")
        for method in operations:
            response = client.open(url, method=method.upper())
            assert response.status_code == 401, f"{method} {path}"
            assert response.mimetype == "application/problem+json"


def test_every_operation_was_exercised() -> None:
    """Runs after the schemathesis cases: each operation had its examples and generated cases."""
    print(f"\nnetwork API: {sum(CASES.values())} schemathesis cases over {len(CASES)} operations: {dict(CASES)}")
    assert set(CASES) == {f"{method.upper()} {path}" for path, operations in openapi_document()["paths"].items()
                          for method in operations}
    assert all(count >= 5 for count in CASES.values()), CASES


def test_the_submit_operation_keeps_its_query_and_header_parameters() -> None:
    parameters = {(p["in"], p["name"]) for p in openapi_document()["paths"]["/api/v1/outbound"]["post"]["parameters"]}
    assert parameters == {("query", "receiver"), ("header", "Idempotency-Key")}
