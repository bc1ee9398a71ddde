"""Tokens CLI, bearer authentication, problem documents and the worker loop."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Blueprint, jsonify

from accesspoint.app import create_app
from accesspoint.cli.main import cli
from accesspoint.config import load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.models import Organisation
from accesspoint.store.scopes import Scope
from accesspoint.web.auth import current_client, require_client
from accesspoint.worker import run_worker


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)}


@pytest.fixture
def gateway(env: dict[str, str]) -> Gateway:
    gw = build_gateway(load_config(None, env))
    with gw.read() as session:
        session.add(Organisation(name="Acme AB", country="SE", org_number="5567321707"))
    return gw


def create_token(env: dict[str, str], *args: str) -> str:
    result = CliRunner(env=env).invoke(cli, ["tokens", "create", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_tokens_cli_create_list_revoke(gateway: Gateway, env: dict[str, str]) -> None:
    token = create_token(env, "--org", "1", "--name", "erp")
    assert token.startswith("pap_")
    listing = CliRunner(env=env).invoke(cli, ["tokens", "list"]).output
    assert "network" in listing and "erp" in listing and token not in listing
    assert CliRunner(env=env).invoke(cli, ["tokens", "revoke", "1"]).exit_code == 0
    assert "revoked" in CliRunner(env=env).invoke(cli, ["tokens", "list"]).output


def test_tokens_cli_errors_are_one_line(gateway: Gateway, env: dict[str, str]) -> None:
    result = CliRunner(env=env).invoke(cli, ["tokens", "create", "--org", "99"])
    assert result.exit_code == 2
    assert "organisation 99 does not exist" in result.output
    result = CliRunner(env=env).invoke(cli, ["tokens", "create"])
    assert result.exit_code == 2 and "either --org" in result.output


def app_with_probe(gateway: Gateway):  # type: ignore[no-untyped-def]
    probe = Blueprint("probe", __name__)

    @probe.get("/api/v1/probe")
    @require_client(Scope.OUTBOUND_READ)
    def network_probe():  # type: ignore[no-untyped-def]
        return jsonify(organisation=current_client().organisation_id)

    @probe.get("/admin/api/probe")
    @require_client(Scope.ADMIN)
    def admin_probe():  # type: ignore[no-untyped-def]
        return jsonify(ok=True)

    app = create_app(gateway=gateway)
    app.register_blueprint(probe)
    return app.test_client()


def test_bearer_tokens_and_roles(gateway: Gateway, env: dict[str, str]) -> None:
    network = create_token(env, "--org", "1")
    admin = create_token(env, "--admin")
    client = app_with_probe(gateway)

    missing = client.get("/api/v1/probe")
    assert missing.status_code == 401
    assert missing.mimetype == "application/problem+json"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/api/v1/probe", headers={"Authorization": "Bearer pap_wrong"}).status_code == 401

    ok = client.get("/api/v1/probe", headers={"Authorization": f"Bearer {network}"})
    assert ok.status_code == 200 and ok.get_json() == {"organisation": 1}
    assert client.get("/admin/api/probe", headers={"Authorization": f"Bearer {network}"}).status_code == 403
    assert client.get("/api/v1/probe", headers={"Authorization": f"Bearer {admin}"}).status_code == 403
    assert client.get("/admin/api/probe", headers={"Authorization": f"Bearer {admin}"}).status_code == 200


def test_api_errors_are_problem_documents(gateway: Gateway) -> None:
    client = app_with_probe(gateway)
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404
    assert client.get("/not-api").mimetype != "application/problem+json"


def test_openapi_document_is_served(gateway: Gateway) -> None:
    document = create_app(gateway=gateway).test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_worker_runs_tasks_and_survives_a_failing_one(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def broken(_gw: Gateway) -> int:
        calls.append("broken")
        raise RuntimeError("boom")

    def busy(_gw: Gateway) -> int:
        calls.append("busy")
        return 2

    monkeypatch.setattr("accesspoint.worker.load_tasks", lambda: [("broken", broken), ("busy", busy)])
    assert run_worker(gateway, once=True) == 2
    assert calls == ["broken", "busy"]
    stop = threading.Event()
    stop.set()
    assert run_worker(gateway, stop=stop) == 0
