"""The gateway's health as `GET /health` and `/metrics` report it: database, background worker, queue,
certificates.

Two grades of trouble. *Down* (HTTP 503): this process cannot do its job: the database does not answer, or our AP
certificate is not valid now; a load balancer should stop sending it traffic. *Degraded* (HTTP 200, status
"degraded"): it answers, but a person must act: no background worker has reported for `health.worker_stale_seconds`
(outbound messages would stay `queued`), the oldest due message or webhook delivery has waited
`health.queue_stuck_seconds`, a certificate expires within `health.certificate_warning_days`, or the BIS validation
rules are missing or older than the release in force by date (submissions are refused with 503 without them). Every
reason is one line naming what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from accesspoint.core.validation import newest_in_force, release_key
from accesspoint.gateway import Gateway
from accesspoint.store.database import display_url
from accesspoint.store.liveness import Background, background, live_workers

NO_WORKER_HINT = ("No background worker is running (none has reported within health.worker_stale_seconds), so "
                  "nothing is being sent: start `peppol-ap worker`, or the whole gateway with `peppol-ap run`. The "
                  "message waits and goes out once a worker runs.")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@dataclass
class Health:
    now: datetime
    down: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    background: Background | None = None
    certificates: dict[str, x509.Certificate] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "down" if self.down else "degraded" if self.degraded else "ok"

    @property
    def http_status(self) -> int:
        return 503 if self.down else 200


def certificate_facts(cert: x509.Certificate, now: datetime) -> dict[str, Any]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": _iso(cert.not_valid_after_utc),
        "days_left": (cert.not_valid_after_utc - now).days,
        "ok": cert.not_valid_before_utc <= now <= cert.not_valid_after_utc,
    }


def worker_missing(gateway: Gateway, session: Session, now: datetime) -> bool:
    """No worker has a fresh heartbeat: queued messages wait for nothing (their hint says so, NO_WORKER_HINT)."""
    return live_workers(session, now, timedelta(seconds=gateway.config.health.worker_stale_seconds)) == 0


def _validation_rules(gateway: Gateway, health: Health) -> None:
    """Are the rules installed, and is the release in force by date among them? (Reads the rules directory only;
    nothing is compiled.)"""
    settings = gateway.config.validation
    rules = gateway.bis.rules
    installed = sorted(rules.releases(), key=release_key)
    today = health.now.date()
    mandatory = newest_in_force(settings.release_dates, today)
    in_use = settings.release or newest_in_force(settings.release_dates, today, installed)
    reasons = []
    if not installed or rules.missing():
        reasons.append(f"no complete set of BIS validation rules is installed in {rules.path}: submissions are "
                       "refused (503) and received documents wait for validation; run `peppol-ap rules install`")
    elif mandatory is not None and (in_use is None or release_key(in_use) < release_key(mandatory)):
        reasons.append(f"BIS rule release {mandatory} is mandatory since "
                       f"{settings.release_dates[mandatory].isoformat()} but validation uses "
                       f"{in_use or 'none'} (installed: {', '.join(installed)}): install newer rules with "
                       "`peppol-ap rules install`" + (" or change validation.release" if settings.release else ""))
    health.sections["validation"] = {"ok": not reasons, "rules_dir": str(rules.path), "installed": installed,
                                     "release": in_use, "mandatory_release": mandatory}
    health.degraded.extend(reasons)


def check(gateway: Gateway, now: datetime) -> Health:
    cfg = gateway.config
    health = Health(now)
    url = display_url(cfg.database_url)
    stale = timedelta(seconds=cfg.health.worker_stale_seconds)
    try:
        with gateway.read() as session:
            health.background = found = background(session, now, stale)
        health.sections["database"] = {"ok": True, "url": url}
    except SQLAlchemyError as exc:
        health.sections["database"] = {"ok": False, "url": url, "error": type(exc).__name__}
        health.down.append(f"the database {url} does not answer ({type(exc).__name__})")
        found = None
    if found is not None:
        worker_ok = found.live_workers > 0
        health.sections["worker"] = {"ok": worker_ok, "live": found.live_workers,
                                     "last_heartbeat_at": _iso(found.last_beat)}
        if not worker_ok:
            since = f"its last heartbeat was at {_iso(found.last_beat)}" if found.last_beat else "none ever reported"
            health.degraded.append(f"no background worker is running ({since}): outbound messages stay queued "
                                   "and webhooks undelivered until `peppol-ap worker` (or `peppol-ap run`) runs")
        age = (now - found.oldest_due).total_seconds() if found.oldest_due else 0.0
        queue_ok = age < cfg.health.queue_stuck_seconds
        health.sections["queue"] = {"ok": queue_ok, "due": found.due, "oldest_due_seconds": round(age, 1)}
        if not queue_ok and worker_ok:  # without a worker the reason above already says why
            health.degraded.append(f"the queue is stuck: {found.due} item(s) due, the oldest for {age:.0f} s; "
                                   "check the worker's log")
    health.certificates = {"ap": gateway.key.certificate}
    if gateway.smp_key is not None:
        health.certificates["smp"] = gateway.smp_key.certificate
    warning = cfg.health.certificate_warning_days
    for role, cert in health.certificates.items():
        facts = certificate_facts(cert, now)
        facts["expires_soon"] = facts["ok"] and facts["days_left"] < warning
        health.sections.setdefault("certificates", {})[role] = facts
        name = f"our {role.upper()} certificate {facts['subject']}"
        if not facts["ok"]:
            # without a valid AP certificate no peer accepts our receipts; an SMP one only breaks discovery
            (health.down if role == "ap" else health.degraded).append(
                f"{name} is not valid now (valid until {facts['not_after']})")
        elif facts["expires_soon"]:
            health.degraded.append(f"{name} expires in {facts['days_left']} days ({facts['not_after']}): "
                                   "replace it before then")
    _validation_rules(gateway, health)
    return health
