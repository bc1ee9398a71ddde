"""The app factory on its embedded defaults: local environment, SQLite, dev PKI made on first start."""

from __future__ import annotations

from pathlib import Path

import pytest

from accesspoint.app import create_app
from accesspoint.config import ConfigError, load_config
from accesspoint.gateway import build_gateway
from accesspoint.store.database import make_engine


def test_health_reports_environment_database_and_certificate(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    client = create_app(cfg).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["environment"] == "local"
    assert body["database"] == {"ok": True, "url": f"sqlite:///{tmp_path / 'gateway.db'}"}
    assert body["certificate"]["ok"] is True
    assert "CN=POP000001" in body["certificate"]["subject"]
    assert body["certificate"]["days_left"] > 300
    assert (tmp_path / "pki" / "ap.p12").is_file()


def test_unreachable_database_stops_start_up_with_one_line(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path),
                             "PEPPOL_AP_DATABASE__URL": "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"})
    with pytest.raises(ConfigError) as info:
        create_app(cfg)
    message = str(info.value)
    assert message.startswith("database.url: cannot migrate postgresql+psycopg://nobody:***@127.0.0.1:1/none")
    assert "secret" not in message and "\n" not in message


def test_health_degrades_when_the_database_goes_away(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    gateway = build_gateway(cfg)
    gateway.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = create_app(gateway=gateway).test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is False
