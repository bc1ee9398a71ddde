"""Flask application factory: the web edge of the gateway."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import SQLAlchemyError

from accesspoint import __version__
from accesspoint.config import Config, key_material, load_config, trust_anchors
from accesspoint.store.database import display_url, make_engine, ping


def create_app(config: Config | None = None) -> Flask:
    cfg = config or load_config()
    material = key_material(cfg)  # fails start-up with a one-line ConfigError
    anchors = trust_anchors(cfg)
    engine = make_engine(cfg.database_url)

    app = Flask("accesspoint")
    app.config["PEPPOL"] = cfg
    app.extensions["peppol"] = {"config": cfg, "key": material, "anchors": anchors, "engine": engine}

    @app.get("/health")
    def health() -> Any:
        now = datetime.now(UTC)
        cert = material.certificate
        try:
            ping(engine)
            database = {"ok": True, "url": display_url(cfg.database_url)}
        except SQLAlchemyError as exc:
            database = {"ok": False, "url": display_url(cfg.database_url), "error": type(exc).__name__}
        days_left = (cert.not_valid_after_utc - now).days
        certificate = {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "days_left": days_left,
            "ok": cert.not_valid_before_utc <= now <= cert.not_valid_after_utc,
        }
        ok = database["ok"] and certificate["ok"]
        body = {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "environment": cfg.environment,
            "sml_zone": cfg.sml_zone,
            "trust_anchors": [c.subject.rfc4514_string() for c in anchors.ap_cas],
            "database": database,
            "certificate": certificate,
        }
        return jsonify(body), 200 if ok else 503

    return app
