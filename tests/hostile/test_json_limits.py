"""Hostile JSON bodies (issue 13) against the network API (`POST /api/v1/webhooks`) and the admin API
(`POST /admin/api/organisations`): a body over `[api] max_json_bytes` is a 413 problem, whether it declares its
length or comes chunked; nesting deeper than `[api] max_json_depth` is a 400 problem (it was a 500: the parser's
RecursionError). Each time nothing is stored and the gateway serves the next valid request. Documents submitted
for sending are XML and keep their own, larger limit.

The limits are set small here (MAX_BYTES, MAX_DEPTH) so that the bodies stay small; the defaults behave the same.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from accesspoint.app import create_app
from accesspoint.config import load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import ApiClient, ApiRole, Message, Organisation, Participant, WebhookSubscription
from tests.sending.harness import SENDER, invoice
from tests.web.conftest import Org, dev_pki, gateway_env, make_org  # noqa: F401 (fixture)

MAX_BYTES = 4096
MAX_DEPTH = 8


@pytest.fixture
def gateway(tmp_path: Path, dev_pki: Path, database_url: str) -> Iterator[Gateway]:  # noqa: F811
    env = {**gateway_env(tmp_path / "data", dev_pki, database_url),
           "PEPPOL_AP_API__MAX_JSON_BYTES": str(MAX_BYTES), "PEPPOL_AP_API__MAX_JSON_DEPTH": str(MAX_DEPTH)}
    gw = build_gateway(load_config(None, env))
    yield gw
    gw.engine.dispose()


@pytest.fixture
def admin(gateway: Gateway) -> dict[str, str]:
    with gateway.read() as session:
        client, token = ApiClient.issue("ops", ApiRole.ADMIN)
        session.add(client)
    return {"Authorization": f"Bearer {token}"}


def valid_webhook() -> dict[str, Any]:
    return {"url": "https://erp.example.com/peppol", "events": ["inbound.received"]}


def valid_organisation() -> dict[str, Any]:
    return {"name": "Globex AS", "country": "NO"}


def stored(gateway: Gateway) -> tuple[int, int]:
    """(webhook subscriptions, organisations)"""
    with gateway.read() as session:
        return (session.scalar(select(func.count()).select_from(WebhookSubscription)) or 0,
                session.scalar(select(func.count()).select_from(Organisation)) or 0)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def doors(acme: Org, admin: dict[str, str]) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """(path, auth header, a valid body) of one JSON route of each API."""
    return [("/api/v1/webhooks", acme.auth, valid_webhook()), ("/admin/api/organisations", admin, valid_organisation())]


def assert_problem(answer: Any, status: int, text: str) -> None:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    assert text in answer.get_json()["detail"]


def test_an_oversized_body_is_413_before_it_is_read(gateway: Gateway, client: FlaskClient,
                                                    doors: list[Any]) -> None:
    before = stored(gateway)
    for path, auth, body in doors:
        padded = json.dumps({**body, "padding": "x" * MAX_BYTES})
        assert_problem(client.post(path, data=padded, content_type="application/json", headers=auth), 413,
                       f"larger than {MAX_BYTES} bytes (api.max_json_bytes)")
        # the declared length is refused up front: a body that never arrives does not matter
        lying = client.post(path, input_stream=io.BytesIO(b"{"), content_type="application/json", headers=auth,
                            environ_overrides={"CONTENT_LENGTH": str(10 * MAX_BYTES)})
        assert lying.status_code == 413
    assert stored(gateway) == before
    for path, auth, body in doors:
        assert client.post(path, json=body, headers=auth).status_code == 201
    assert stored(gateway) == (before[0] + 1, before[1] + 1)


def test_an_oversized_chunked_body_is_413_once_reading_passes_the_limit(gateway: Gateway, client: FlaskClient,
                                                                        doors: list[Any]) -> None:
    # a chunked request has no Content-Length; the WSGI server (gunicorn, werkzeug) de-chunks it and says so with
    # wsgi.input_terminated, which is what this environ has
    def chunked(path: str, auth: dict[str, str], data: bytes) -> Any:
        return client.post(path, input_stream=io.BytesIO(data), content_type="application/json",
                           headers={**auth, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})

    before = stored(gateway)
    for path, auth, body in doors:
        padded = json.dumps({**body, "padding": "x" * (4 * MAX_BYTES)}).encode()
        assert_problem(chunked(path, auth, padded), 413, "api.max_json_bytes")
    assert stored(gateway) == before
    for path, auth, body in doors:
        assert chunked(path, auth, json.dumps(body).encode()).status_code == 201
    assert stored(gateway) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100, 100_000])
def test_deep_nesting_is_400_not_500(gateway: Gateway, client: FlaskClient, doors: list[Any], depth: int) -> None:
    before = stored(gateway)
    for path, auth, _ in doors:
        # bracket runs too deep for the parser's recursion (100 000) need no more than MAX_BYTES either
        text = "[" * depth + "]" * depth if depth > MAX_BYTES // 2 else json.dumps({"events": nested(depth)})
        answer = client.post(path, data=text, content_type="application/json", headers=auth)
        if len(text) > MAX_BYTES:
            assert_problem(answer, 413, "api.max_json_bytes")
        else:
            assert_problem(answer, 400, f"nested deeper than {MAX_DEPTH} levels (api.max_json_depth)")
    assert stored(gateway) == before
    for path, auth, body in doors:
        assert client.post(path, json=body, headers=auth).status_code == 201


def test_parser_recursion_is_400_under_a_large_size_limit(tmp_path: Path, dev_pki: Path,  # noqa: F811
                                                         database_url: str) -> None:
    # with the default size limit a bracket bomb fits, and reaches the parser's own recursion limit
    gw = build_gateway(load_config(None, gateway_env(tmp_path / "data", dev_pki, database_url)))
    try:
        org = make_org(gw, "Acme AB")
        client = create_app(gateway=gw).test_client()
        bomb = "[" * 100_000 + "]" * 100_000
        assert_problem(client.post("/api/v1/webhooks", data=bomb, content_type="application/json", headers=org.auth),
                       400, "nested deeper than 32 levels")
        assert client.post("/api/v1/webhooks", json=valid_webhook(), headers=org.auth).status_code == 201
    finally:
        gw.engine.dispose()


def test_nesting_at_the_limit_reaches_the_view(client: FlaskClient, doors: list[Any]) -> None:
    # exactly MAX_DEPTH levels (the object itself is one) is parsed; the view then judges the fields
    for path, auth, body in doors:
        field = "events" if "events" in body else "name"
        answer = client.post(path, json={**body, field: nested(MAX_DEPTH - 1)}, headers=auth)
        assert answer.status_code in (400, 422), answer.get_json()
        assert "api.max_json_depth" not in answer.get_json()["detail"]


def test_documents_for_sending_keep_their_own_limit(gateway: Gateway, client: FlaskClient, acme: Org,
                                                    vectors: Path) -> None:
    with gateway.read() as session:
        session.add(Participant(scheme=SENDER.scheme, value=SENDER.value, organisation_id=acme.id))
    document = invoice(vectors / "bis" / "base-example.xml")
    assert len(document) > MAX_BYTES
    answer = client.post("/api/v1/outbound", data=document, content_type="application/xml", headers=acme.auth)
    assert answer.status_code == 202, answer.get_json()
    with gateway.read() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
