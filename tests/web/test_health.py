"""The app factory on its embedded defaults: local environment, SQLite, dev PKI made on first start."""

from __future__ import annotations

from pathlib import Path

from accesspoint.app import create_app
from accesspoint.config import load_config


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


def test_health_reports_unreachable_database(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path),
                             "PEPPOL_AP_DATABASE__URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    response = create_app(cfg).test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["database"]["ok"] is False
    assert "nobody@127.0.0.1:1/none" in response.get_json()["database"]["url"]
