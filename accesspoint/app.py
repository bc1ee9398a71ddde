"""Flask application factory: the web edge of the gateway."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify

from accesspoint import __version__, health, metrics
from accesspoint.adapters.participant_source import StoreParticipantSource
from accesspoint.config import Config, load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.web import (
    access_log,
    admin,
    admin_audit,
    admin_messages,
    admin_tokens,
    api_events,
    api_inbound,
    api_outbound,
    api_webhooks,
    as4,
    json_limits,
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
    json_limits.install(app, gw.config.api)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(api_outbound.blueprint)
    app.register_blueprint(api_inbound.blueprint)
    app.register_blueprint(api_webhooks.blueprint)
    app.register_blueprint(api_events.blueprint)
    app.register_blueprint(as4.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(admin_audit.blueprint)
    app.register_blueprint(admin_messages.blueprint)
    app.register_blueprint(admin_tokens.blueprint)
    if gw.smp_key is not None:
        # Our SMP (discovery.md 3), live from the store; the SML points senders at gw.smp_url.
        source = StoreParticipantSource(gw.read)
        app.register_blueprint(smp_blueprint(source, gw.smp_key, gw.key.certificate, gw.as4_url,
                                             public_url=gw.smp_url), url_prefix="/smp")
    metrics.install(app, gw)

    @app.get("/health")
    def health_view() -> Any:
        cfg = gw.config
        report = health.check(gw, datetime.now(UTC))
        body = {
            "status": report.status,
            "reasons": report.down + report.degraded,
            "version": __version__,
            "environment": cfg.environment,
            "as4_url": gw.as4_url,
            "sml_zone": cfg.sml_zone,
            "trust_anchors": [c.subject.rfc4514_string() for c in gw.anchors.ap_cas],
            **report.sections,
        }
        return jsonify(body), report.http_status

    return app
