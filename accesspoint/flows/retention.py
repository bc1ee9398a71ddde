"""Retention: removing payloads, then whole messages, once the [retention] periods have passed.

Five kinds, each a rule over finished messages only:

    inbound_metadata    acked inbound            the whole message    metadata_days after acked_at
    outbound_metadata   sent or failed outbound  the whole message    metadata_days after sent_at / the failure
    inbound_payload     acked inbound            payload file         inbound_acked_payload_days after acked_at
    outbound_payload    sent outbound            payload + wire copy  outbound_sent_payload_days after sent_at
    failed_payload      failed outbound          payload + wire copy  outbound_failed_payload_days after failing

A whole message goes with its receipt, attempts and events (foreign keys cascade); its payload file goes too.

Never removed: an inbound message not yet acknowledged, an outbound message queued, sending or retrying (the
states are not in any rule), a message with a webhook delivery still pending (its event would vanish), and the
row of any message younger than `duplicate_window_days` (the AS4 MessageId and SBDH InstanceIdentifier checks
read it). A removed payload leaves the row with `blob_key` NULL and its size and sha256, so the APIs can say
the payload is gone rather than fail.

Order of one batch: one write transaction changes the rows and adds to `retention_counts` (the /metrics
counters), commits, then the files are deleted. A crash in between leaves files no row refers to, which the
orphan sweep (maintenance.py) removes; never a row pointing at a deleted file.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from accesspoint.config import RetentionSection
from accesspoint.gateway import Gateway
from accesspoint.store.models import (
    DeliveryState,
    Direction,
    Event,
    Message,
    MessageState,
    RetentionCount,
    WebhookDelivery,
)
from accesspoint.store.types import utcnow

log = logging.getLogger(__name__)

_last_run: dict[str, float] = {}
_last_run_lock = threading.Lock()


@dataclass(frozen=True)
class Rule:
    kind: str
    direction: Direction
    states: tuple[MessageState, ...]
    # when the message reached its state; updated_at for `failed`, which no other update follows
    clock: InstrumentedAttribute[Any]
    setting: str
    whole_message: bool


# whole messages first: a message past both periods is removed once, as a whole message
RULES: tuple[Rule, ...] = (
    Rule("inbound_metadata", Direction.INBOUND, (MessageState.ACKED,), Message.acked_at, "metadata_days", True),
    Rule("outbound_metadata", Direction.OUTBOUND, (MessageState.SENT,), Message.sent_at, "metadata_days", True),
    Rule("outbound_metadata", Direction.OUTBOUND, (MessageState.FAILED,), Message.updated_at, "metadata_days",
         True),
    Rule("inbound_payload", Direction.INBOUND, (MessageState.ACKED,), Message.acked_at,
         "inbound_acked_payload_days", False),
    Rule("outbound_payload", Direction.OUTBOUND, (MessageState.SENT,), Message.sent_at,
         "outbound_sent_payload_days", False),
    Rule("failed_payload", Direction.OUTBOUND, (MessageState.FAILED,), Message.updated_at,
         "outbound_failed_payload_days", False),
)
KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in RULES))
_WHOLE_MESSAGE_KINDS = frozenset(rule.kind for rule in RULES if rule.whole_message)


@dataclass(frozen=True)
class Candidate:
    """A message a rule applies to: what would go, and since when the message is in its state."""

    kind: str
    message_id: str
    direction: str
    state: str
    since: datetime


@dataclass
class RetentionReport:
    dry_run: bool
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def _pending_delivery() -> Any:
    return exists(select(WebhookDelivery.id).join(Event, Event.id == WebhookDelivery.event_id)
                  .where(Event.message_id == Message.id, WebhookDelivery.state == DeliveryState.PENDING))


def _due(rule: Rule, settings: RetentionSection, now: datetime) -> Select[Any]:
    cutoff = now - timedelta(days=getattr(settings, rule.setting))
    query = (select(Message.id, Message.direction, Message.state, rule.clock, Message.blob_key,
                    Message.wire_blob_key)
             .where(Message.direction == rule.direction, Message.state.in_(rule.states), rule.clock < cutoff,
                    ~_pending_delivery()))
    if rule.whole_message:
        # a message's clock never precedes its creation, and metadata_days >= duplicate_window_days (config.py):
        # so the row of a message younger than the duplicate window is never due
        return query
    return query.where((Message.blob_key.is_not(None)) | (Message.wire_blob_key.is_not(None)))


def _count(session: Session, kind: str, removed: int) -> None:
    """Add to the kind's running total. The first removal of a kind inserts its row; two PostgreSQL workers doing
    that at the same moment make one fail on the primary key, which rolls its batch back for the next round."""
    changed = session.execute(update(RetentionCount).where(RetentionCount.kind == kind)
                              .values(removed=RetentionCount.removed + removed, updated_at=utcnow()))
    if not changed.rowcount:  # type: ignore[attr-defined]
        session.add(RetentionCount(kind=kind, removed=removed))


def _remove_batch(gateway: Gateway, rule: Rule, settings: RetentionSection, now: datetime) -> int:
    with gateway.write() as session:
        query = _due(rule, settings, now).order_by(Message.id).limit(settings.batch_size)
        if session.get_bind().dialect.name == "postgresql":
            # another worker's batch holds its rows; this one takes the next
            query = query.with_for_update(of=Message, skip_locked=True)
        rows = session.execute(query).all()
        if not rows:
            return 0
        ids = [row.id for row in rows]
        if rule.whole_message:
            session.execute(delete(Message).where(Message.id.in_(ids)))
        else:
            # updated_at kept: it is the failed state's clock, and removing a payload is no change of state
            session.execute(update(Message).where(Message.id.in_(ids))
                            .values(blob_key=None, wire_blob_key=None, wire_content_type=None,
                                    updated_at=Message.updated_at))
        _count(session, rule.kind, len(ids))
    for row in rows:
        for key in (row.blob_key, row.wire_blob_key):
            if key is not None:
                gateway.blobs.delete(key)
    log.info("retention removed messages' data", extra={"kind": rule.kind, "count": len(ids)})
    return len(ids)


def _candidates(gateway: Gateway, settings: RetentionSection, now: datetime) -> list[Candidate]:
    """What a run would remove; a message past both periods is listed once, as a whole message."""
    found: list[Candidate] = []
    with gateway.read() as session:
        for rule in RULES:
            for row in session.execute(_due(rule, settings, now).order_by(rule.clock, Message.id)):
                found.append(Candidate(rule.kind, row.id, row.direction, row.state, row[3]))
    whole = {c.message_id for c in found if c.kind in _WHOLE_MESSAGE_KINDS}
    return [c for c in found if c.kind in _WHOLE_MESSAGE_KINDS or c.message_id not in whole]


def run(gateway: Gateway, *, dry_run: bool, now: datetime | None = None) -> RetentionReport:
    """Apply every rule, or with dry_run list what would go (`candidates`, counted in `removed`) and change
    nothing. A message past both periods counts once, as a whole message."""
    settings = gateway.config.retention
    now = now or utcnow()
    report = RetentionReport(dry_run)
    if dry_run:
        report.candidates = _candidates(gateway, settings, now)
        for candidate in report.candidates:
            report.removed[candidate.kind] += 1
        return report
    for rule in RULES:
        while removed := _remove_batch(gateway, rule, settings, now):
            report.removed[rule.kind] += removed
    return report


def _due_now(gateway: Gateway, now: float) -> bool:
    """At most one run per `retention.interval_minutes` per database in this process (a restarted worker runs
    once at start)."""
    interval = gateway.config.retention.interval_minutes * 60
    key = gateway.config.database_url
    with _last_run_lock:
        last = _last_run.get(key)
        if last is not None and now - last < interval:
            return False
        _last_run[key] = now
        return True


def apply_retention(gateway: Gateway) -> int:
    """Worker task: run retention when enabled and due; the number of messages whose data was removed (a dry
    run logs what it would remove and counts nothing, so the worker still idles)."""
    settings = gateway.config.retention
    if not settings.enabled or not _due_now(gateway, time.time()):
        return 0
    report = run(gateway, dry_run=settings.dry_run)
    if report.dry_run:
        for candidate in report.candidates:
            log.info("retention dry run: would remove", extra={"kind": candidate.kind,
                                                                "message_id": candidate.message_id})
        return 0
    return report.total
