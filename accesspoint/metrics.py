"""Prometheus metrics of one gateway app, served at `GET /metrics` (text exposition format).

Two kinds:
- read at scrape time from live state by `GatewayCollector`: messages by direction and state, webhook deliveries by
  state, outbound attempt outcomes (one GROUP BY query each), the discovery cache statistics (only when discovery
  was built: a scrape never builds it) and the revocation checker statistics, `soft_fail_used` among them (a
  certificate accepted on a stale answer, which operations must see);
- counted in-process by the request handlers: AS4 requests by outcome and ebMS error code, /as4 latency.

Each app has its own `CollectorRegistry` (tests create many apps in one process; the global registry would refuse
the second registration). The database figures are the same whichever process answers. The in-process counters
belong to the gunicorn worker that served the scrape: with `serve --workers N` > 1 each scrape sees one worker's
share, so alert on the database gauges and use `rate()` on the counters only as a sample. prometheus-client's
multiprocess mode would merge them, but it swaps every metric for files under PROMETHEUS_MULTIPROC_DIR and needs
cleanup hooks in the gunicorn master; not worth it for counters whose truth is in the database anyway.

`/metrics` is unauthenticated, on the same listener as /as4: expose it to the monitoring system only, by having
the TLS-terminating proxy in front refuse `/metrics` from the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from flask import Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from accesspoint import health
from accesspoint.gateway import Gateway
from accesspoint.store.models import Attempt, Message, RetentionCount, WebhookDelivery

PREFIX = "peppol_ap"
# AS4 requests range from a ping (tens of ms) to a 200 MB payload (tens of seconds).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Cache statistics that only grow (counters); the others are current sizes (gauges).
_DISCOVERY_GAUGES = ("size", "inflight")


class GatewayCollector(Collector):
    """Reads the gateway's state at scrape time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        yield from self._database()
        yield from self._health()
        yield from self._discovery()
        yield from self._revocation()

    def _database(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 if the database answered the metrics queries")
        messages = GaugeMetricFamily(f"{PREFIX}_messages", "Stored AS4 user messages by direction and state",
                                     labels=["direction", "state"])
        deliveries = GaugeMetricFamily(f"{PREFIX}_webhook_deliveries", "Webhook deliveries by state",
                                       labels=["state"])
        # a gauge, not a counter: retention deletes attempts with their messages, and a falling counter would
        # read as a reset
        attempts = GaugeMetricFamily(f"{PREFIX}_outbound_attempts", "Recorded outbound delivery attempts by "
                                     "outcome (in_progress: not finished yet)", labels=["outcome"])
        # kept in the database by the worker that removed them (flows/retention.py): any process can serve it
        retention = CounterMetricFamily(f"{PREFIX}_retention_removed", "Messages whose data retention removed, by "
                                        "kind (inbound_payload, outbound_payload, failed_payload: the payload; "
                                        "inbound_metadata, outbound_metadata: the whole message)",
                                        labels=["kind"])
        try:
            with self.gateway.read() as session:
                for direction, state, count in session.execute(
                        select(Message.direction, Message.state, func.count()).group_by(Message.direction,
                                                                                        Message.state)):
                    messages.add_metric([direction, state], count)
                for state, count in session.execute(
                        select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)):
                    deliveries.add_metric([state], count)
                for outcome, count in session.execute(
                        select(Attempt.outcome, func.count()).group_by(Attempt.outcome)):
                    attempts.add_metric([outcome or "in_progress"], count)
                for kind, removed in session.execute(select(RetentionCount.kind, RetentionCount.removed)):
                    retention.add_metric([kind], removed)
        except SQLAlchemyError:
            # a scrape must still answer (with database_up 0) when the database is down: that is when it matters
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, messages, deliveries, attempts, retention)

    def _health(self) -> Iterator[Metric]:
        """What /health judges, as numbers an alert rule can compare (see accesspoint/health.py)."""
        report = health.check(self.gateway, datetime.now(UTC))
        yield GaugeMetricFamily(f"{PREFIX}_health_status", "0 ok, 1 degraded (a person must act), 2 down",
                                value={"ok": 0, "degraded": 1, "down": 2}[report.status])
        days = GaugeMetricFamily(f"{PREFIX}_certificate_days_left", "Days until our certificate expires "
                                 "(negative: expired)", labels=["role", "subject"])
        for role, cert in report.certificates.items():
            days.add_metric([role, cert.subject.rfc4514_string()], (cert.not_valid_after_utc - report.now).days)
        yield days
        found = report.background
        if found is None:  # the database is down: _database() said so
            return
        yield GaugeMetricFamily(f"{PREFIX}_workers_live", "Background workers with a fresh heartbeat",
                                value=found.live_workers)
        if found.last_beat is not None:
            yield GaugeMetricFamily(f"{PREFIX}_worker_heartbeat_age_seconds", "Seconds since the newest worker "
                                    "heartbeat", value=(report.now - found.last_beat).total_seconds())
        yield GaugeMetricFamily(f"{PREFIX}_queue_due", "Outbound messages and webhook deliveries whose time has "
                                "come", value=found.due)
        yield GaugeMetricFamily(f"{PREFIX}_queue_oldest_due_seconds", "Seconds the longest-waiting due item has "
                                "waited (0: none)",
                                value=(report.now - found.oldest_due).total_seconds() if found.oldest_due else 0)

    def _discovery(self) -> Iterator[Metric]:
        discovery = self.gateway._discovery  # the property would build it; a scrape only reports what exists
        if discovery is None:
            return
        stats = discovery.cache.stats()
        events = CounterMetricFamily(f"{PREFIX}_discovery_cache_events", "SMP discovery cache events",
                                     labels=["event"])
        for name, value in sorted(stats.items()):
            if name in _DISCOVERY_GAUGES:
                yield GaugeMetricFamily(f"{PREFIX}_discovery_cache_{name}", f"SMP discovery cache {name}",
                                        value=value)
            else:
                events.add_metric([name], value)
        yield events

    def _revocation(self) -> Iterator[Metric]:
        checker = self.gateway.validator.revocation
        if checker is None:  # the local environment checks no revocation
            return
        stats = dict(checker.stats)
        events = CounterMetricFamily(f"{PREFIX}_revocation_events", "Certificate revocation checks and their "
                                     "results", labels=["event"])
        for name, value in sorted(stats.items()):
            events.add_metric([name], value)
        yield events
        # its own series so an alert needs no label filter: every use accepted a certificate on a stale answer
        yield CounterMetricFamily(f"{PREFIX}_revocation_soft_fail_used", "Certificates accepted on a stale "
                                  "revocation answer because no CRL/OCSP answer could be had (soft fail)",
                                  value=stats.get("soft_fail_used", 0))


class Metrics:
    """The registry of one app and its in-process instruments."""

    def __init__(self, gateway: Gateway) -> None:
        self.registry = CollectorRegistry()
        self.as4_requests = Counter(f"{PREFIX}_as4_requests", "AS4 requests by outcome (accepted, repeated, ping, "
                                    "refused, failed) and ebMS error code ('' when none)",
                                    ["outcome", "error_code"], registry=self.registry)
        self.as4_latency = Histogram(f"{PREFIX}_as4_request_seconds", "Time to answer a POST /as4",
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(GatewayCollector(gateway))

    def observe_as4(self, outcome: str, error_code: str | None, seconds: float) -> None:
        self.as4_requests.labels(outcome=outcome, error_code=error_code or "").inc()
        self.as4_latency.observe(seconds)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)


def install(app: Flask, gateway: Gateway) -> Metrics:
    """Create the app's metrics and serve them at GET /metrics."""
    metrics = Metrics(gateway)
    app.extensions["metrics"] = metrics
    app.add_url_rule("/metrics", "metrics", metrics.render, methods=["GET"])
    return metrics


def metrics() -> Metrics:
    """The metrics of the current app (inside a request)."""
    found: Metrics = current_app.extensions["metrics"]
    return found
