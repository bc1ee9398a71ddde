"""Flask application factory: the web edge of the gateway."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import SQLAlchemyError

from accesspoint import __version__, metrics
from accesspoint.adapters.participant_source import StoreParticipantSource
from accesspoint.config import Config, load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.database import display_url, ping
from accesspoint.web import (
    access_log,
    admin,
    admin_audit,
    api_events,
    api_inbound,
    api_outbound,
    api_webhooks,
    as4,
    openapi,
)
from accesspoint.web.problems import register_problem_handlers
from smp.server import smp_blueprint


def create_app(config: Config | None = None, *, gateway: Gateway | None = None) -> Flask:
    """The WSGI app. Configuration problems raise ConfigError (one line each) before anything listens."""
    gw = gateway or build_gateway(config or load_config())
    app = Flask("accesspoint")
    app.extensions["gateway"] = gw
    register_problem_handlers(app)
    access_log.install(app)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(api_outbound.blueprint)
    app.register_blueprint(api_inbound.blueprint)
    app.register_blueprint(api_webhooks.blueprint)
    app.register_blueprint(api_events.blueprint)
    app.register_blueprint(as4.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(admin_audit.blueprint)
    if gw.smp_key is not None:
        # Our SMP (discovery.md 3), live from the store; the SML points senders at gw.smp_url.
        source = StoreParticipantSource(gw.read)
        app.register_blueprint(smp_blueprint(source, gw.smp_key, gw.key.certificate, gw.as4_url,
                                             public_url=gw.smp_url), url_prefix="/smp")
    metrics.install(app, gw)

    @app.get("/health")
    def health() -> Any:
        cfg = gw.config
        now = datetime.now(UTC)
        cert = gw.key.certificate
        try:
            ping(gw.engine)
            database = {"ok": True, "url": display_url(cfg.database_url)}
        except SQLAlchemyError as exc:
            database = {"ok": False, "url": display_url(cfg.database_url), "error": type(exc).__name__}
        certificate = {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "days_left": (cert.not_valid_after_utc - now).days,
            "ok": cert.not_valid_before_utc <= now <= cert.not_valid_after_utc,
        }
        ok = database["ok"] and certificate["ok"]
        body = {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "environment": cfg.environment,
            "as4_url": gw.as4_url,
            "sml_zone": cfg.sml_zone,
            "trust_anchors": [c.subject.rfc4514_string() for c in gw.anchors.ap_cas],
            "database": database,
            "certificate": certificate,
        }
        return jsonify(body), 200 if ok else 503

    return app
