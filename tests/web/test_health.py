"""The app factory on its embedded defaults: local environment, SQLite, dev PKI made on first start."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accesspoint.app import create_app
from accesspoint.config import ConfigError, load_config
from accesspoint.gateway import build_gateway
from accesspoint.store import liveness
from accesspoint.store.database import make_engine, session_factory
from accesspoint.store.models import Direction, Message, MessageState
from accesspoint.worker import run_worker
from tests.conftest import rules_env


def test_health_reports_environment_database_worker_and_certificates(tmp_path: Path) -> None:
    cfg = load_config(None, {**rules_env(), "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    app = create_app(cfg)
    run_worker(app.extensions["gateway"], once=True)  # a worker that just ran leaves its heartbeat
    response = app.test_client().get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok", body["reasons"]
    assert body["reasons"] == []
    assert body["environment"] == "local"
    assert body["database"] == {"ok": True, "url": f"sqlite:///{tmp_path / 'gateway.db'}"}
    assert body["worker"]["ok"] is True and body["worker"]["live"] == 1
    assert body["queue"] == {"ok": True, "due": 0, "oldest_due_seconds": 0.0}
    for role, ou in (("ap", "PEPPOL TEST AP"), ("smp", "PEPPOL TEST SMP")):
        certificate = body["certificates"][role]
        assert certificate["ok"] is True and certificate["expires_soon"] is False
        assert "CN=POP000001" in certificate["subject"] and ou in certificate["subject"]
        assert certificate["days_left"] > 300
    assert (tmp_path / "pki" / "ap.p12").is_file()


def test_health_says_when_no_worker_runs_and_the_queue_waits(tmp_path: Path) -> None:
    cfg = load_config(None, {**rules_env(), "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path),
                             "PEPPOL_AP_HEALTH__QUEUE_STUCK_SECONDS": "60"})
    app = create_app(cfg)
    gateway = app.extensions["gateway"]
    client = app.test_client()
    body = client.get("/health").get_json()
    assert body["status"] == "degraded"
    assert body["worker"] == {"ok": False, "live": 0, "last_heartbeat_at": None}
    assert body["reasons"][0].startswith("no background worker is running (none ever reported): outbound "
                                         "messages stay queued")
    # a heartbeat older than the staleness window is no worker either, and a due message waits behind it
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    with gateway.write() as session:
        liveness.beat(session, "elsewhere:1", long_ago)
        session.add(Message(direction=Direction.OUTBOUND, state=MessageState.QUEUED, next_attempt_at=long_ago))
    body = client.get("/health").get_json()
    assert client.get("/health").status_code == 200  # degraded is not down: keep serving
    assert body["worker"]["ok"] is False and body["worker"]["last_heartbeat_at"] is not None
    assert body["queue"]["due"] == 1 and body["queue"]["ok"] is False
    assert len(body["reasons"]) == 1  # the missing worker explains the waiting queue
    # a live worker that does not drain the queue is a stuck queue
    with gateway.write() as session:
        liveness.beat(session, "elsewhere:1", datetime.now(UTC))
    body = client.get("/health").get_json()
    assert body["status"] == "degraded" and body["worker"]["ok"] is True
    assert [r.split(":")[0] for r in body["reasons"]] == ["the queue is stuck"]
    scraped = client.get("/metrics").get_data(as_text=True)
    assert "peppol_ap_health_status 1.0" in scraped
    assert "peppol_ap_workers_live 1.0" in scraped
    assert "peppol_ap_queue_due 1.0" in scraped
    oldest = next(line for line in scraped.splitlines() if line.startswith("peppol_ap_queue_oldest_due_seconds "))
    assert float(oldest.split()[1]) >= 299


def test_a_worker_that_stops_cleanly_is_gone_at_once(tmp_path: Path) -> None:
    cfg = load_config(None, {**rules_env(), "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    app = create_app(cfg)
    gateway = app.extensions["gateway"]
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(gateway,), kwargs={"stop": stop, "idle_seconds": 0.05})
    worker.start()
    client = app.test_client()
    deadline = time.monotonic() + 10
    while not client.get("/health").get_json()["worker"]["ok"]:
        assert time.monotonic() < deadline, "the running worker never reported"
        time.sleep(0.05)
    stop.set()
    worker.join(10)
    assert client.get("/health").get_json()["worker"]["live"] == 0


def test_certificates_close_to_expiry_degrade_health_and_show_in_metrics(tmp_path: Path) -> None:
    # the dev certificates live two years: a warning window of three years covers both
    cfg = load_config(None, {**rules_env(), "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path),
                             "PEPPOL_AP_HEALTH__CERTIFICATE_WARNING_DAYS": "1100"})
    app = create_app(cfg)
    run_worker(app.extensions["gateway"], once=True)
    client = app.test_client()
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "degraded"
    assert body["certificates"]["ap"]["expires_soon"] and body["certificates"]["smp"]["expires_soon"]
    assert [r.split(" certificate")[0] for r in body["reasons"]] == ["our AP", "our SMP"]
    assert all("replace it before then" in r for r in body["reasons"])
    days = [line for line in client.get("/metrics").get_data(as_text=True).splitlines()
            if line.startswith("peppol_ap_certificate_days_left{")]
    assert len(days) == 2 and {'role="ap"' in days[0], 'role="smp"' in days[1]} == {True}
    assert all(700 < float(line.split()[-1]) <= 731 for line in days)


def test_unreachable_database_stops_start_up_with_one_line(tmp_path: Path) -> None:
    cfg = load_config(None, {**rules_env(), "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path),
                             "PEPPOL_AP_DATABASE__URL": "postgresql+psycopg://nobody:secret@127.0.0.1:1/none"})
    with pytest.raises(ConfigError) as info:
        create_app(cfg)
    message = str(info.value)
    assert message.startswith("database.url: cannot migrate postgresql+psycopg://nobody:***@127.0.0.1:1/none")
    assert "secret" not in message and "\n" not in message


def test_health_degrades_when_the_database_goes_away(tmp_path: Path) -> None:
    cfg = load_config(None, {**rules_env(), "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    gateway = build_gateway(cfg)
    gateway.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    gateway.sessions = session_factory(gateway.engine)
    response = create_app(gateway=gateway).test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down"
    assert body["database"]["ok"] is False
    assert body["reasons"][0].startswith("the database sqlite:///") and "does not answer" in body["reasons"][0]


def test_health_degrades_without_validation_rules(tmp_path: Path) -> None:
    cfg = load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    body = create_app(cfg).test_client().get("/health").get_json()
    assert body["validation"]["ok"] is False and body["validation"]["installed"] == []
    assert any(r.startswith(f"no complete set of BIS validation rules is installed in {tmp_path / 'rules'}")
               and "`peppol-ap rules install`" in r for r in body["reasons"])


def test_health_degrades_when_the_installed_rules_are_older_than_the_release_in_force(
        tmp_path: Path, bis_rules: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "schematron/openpeppol/2025.11/xslt").mkdir(parents=True)
    shutil.copy(bis_rules / "manifest.json", rules / "manifest.json")
    cfg = load_config(None, {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    body = create_app(cfg).test_client().get("/health").get_json()
    assert body["validation"] == {"ok": False, "rules_dir": str(rules), "installed": ["2025.11"],
                                  "release": "2025.11", "mandatory_release": "2026.5"}
    assert any(r.startswith("BIS rule release 2026.5 is mandatory since 2026-08-17 but validation uses 2025.11")
               for r in body["reasons"])


def test_health_is_ok_with_the_session_rules(tmp_path: Path) -> None:
    cfg = load_config(None, {**rules_env(), "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    body = create_app(cfg).test_client().get("/health").get_json()
    assert body["validation"]["ok"] is True and body["validation"]["release"] == "2026.5"
