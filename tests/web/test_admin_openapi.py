"""The admin API against its own OpenAPI document (`GET /admin/api/openapi.json`), with schemathesis as for the
network API (tests/web/test_openapi.py): the schema's examples and generated requests for every operation, with an
admin token, against a gateway with organisations, participants, messages and audit records; every check but
positive_data_acceptance (identifiers carry check digits no JSON schema describes).

The gateway registers in a local SML served in this process, so switching receiving on and `PUT /sml` reach a real
SML (and answer its errors as documented)."""

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
from accesspoint.store.models import ApiClient, ApiRole
from accesspoint.web.openapi import admin_openapi_document
from tests.registrations.conftest import serve_local_sml
from tests.web.conftest import gateway_env, inbound_store, make_org
from tests.web.openapi_support import assert_documented_with_examples

CASES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def admin_gateway(tmp_path_factory: pytest.TempPathFactory, dev_pki: Path) -> Iterator[Gateway]:
    data = tmp_path_factory.mktemp("admin-openapi")
    with serve_local_sml(data / "sml") as sml:
        gw = build_gateway(load_config(None, {**gateway_env(data, dev_pki), "PEPPOL_AP_SML__MANAGEMENT_URL": sml.url}))
        yield gw
        gw.engine.dispose()


@pytest.fixture(scope="module")
def admin_auth(admin_gateway: Gateway, vectors: Path) -> dict[str, str]:
    """An admin token, and data for it to find: organisations with participants, messages, audit records."""
    with admin_gateway.read() as session:
        client, token = ApiClient.issue("schema admin", ApiRole.ADMIN)
        session.add(client)
    app = create_app(gateway=admin_gateway).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    created = app.post("/admin/api/organisations", headers=headers, json={
        "name": "Acme AB", "country": "SE", "org_number": "5567321707",
        "participants": [{"identifier": "0007:5567321707"}, {"identifier": "0088:7300010000001"}]})
    assert created.status_code == 201, created.get_json()
    store = inbound_store(admin_gateway, vectors)
    org = make_org(admin_gateway, "Globex AS")
    for name in ("base-example.xml", "vat-category-E.xml"):
        store(org, (vectors / "bis" / name).read_bytes())
    return headers


@pytest.fixture(scope="module")
def admin_app(admin_gateway: Gateway, admin_auth: dict[str, str]) -> Flask:
    return create_app(gateway=admin_gateway)


# generated without a gateway, at collection time, as for the network API
schema = schemathesis.openapi.from_dict(admin_openapi_document())


@schema.parametrize()
# derandomized: the same cases every run, so a CI failure is reproducible (and a pass is not luck)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_admin_api_keeps_its_openapi_contract(case, admin_app: Flask,  # type: ignore[no-untyped-def]
                                                  admin_auth: dict[str, str]) -> None:
    CASES[case.operation.label] += 1
    case.operation.schema.app = admin_app  # the probes of ignored_auth go to the app too (see test_openapi.py)
    case.call_and_validate(base_url="http://localhost", headers=admin_auth, app=admin_app,
                           excluded_checks=[positive_data_acceptance])


def test_every_admin_operation_was_exercised() -> None:
    print(f"\nadmin API: {sum(CASES.values())} schemathesis cases over {len(CASES)} operations: {dict(CASES)}")
    assert set(CASES) == {f"{method.upper()} {path}" for path, operations in admin_openapi_document()["paths"].items()
                          for method in operations}
    assert all(count >= 5 for count in CASES.values()), CASES


def test_the_document_describes_every_admin_route(admin_app: Flask) -> None:
    document = admin_app.test_client().get("/admin/api/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    described = {path.replace("{", "<").replace("}", ">") for path in document["paths"]}
    routes = {re.sub(r"<\w+(\([^)]*\))?:", "<", str(rule)) for rule in admin_app.url_map.iter_rules()
              if str(rule).startswith("/admin/api/") and str(rule) != "/admin/api/openapi.json"}
    assert routes == described, routes ^ described
    assert_documented_with_examples(document)


def test_every_admin_operation_needs_an_admin_token(admin_app: Flask, admin_gateway: Gateway) -> None:
    with admin_gateway.read() as session:
        client, network_token = ApiClient.issue("erp", ApiRole.NETWORK)
        session.add(client)
    http = admin_app.test_client()
    for path, operations in admin_openapi_document()["paths"].items():
        url = (path.replace("{message_id}", "x").replace("{organisation_id}", "1").replace("{participant_id}", "1")
               .replace("{token_id}", "1"))
        for method in operations:
            assert http.open(url, method=method.upper()).status_code == 401, f"{method} {path}"
            network = http.open(url, method=method.upper(), headers={"Authorization": f"Bearer {network_token}"})
            assert network.status_code == 403, f"{method} {path}"
