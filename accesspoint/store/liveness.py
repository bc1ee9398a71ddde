"""What /health and /metrics need to know about the background work: worker heartbeats and the due queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from accesspoint.store.models import (
    DeliveryState,
    Direction,
    Message,
    MessageState,
    WebhookDelivery,
    WorkerHeartbeat,
)

# a crashed worker cannot remove its own row; rows this old are nobody's
FORGET_AFTER = timedelta(days=1)


def beat(session: Session, worker: str, now: datetime) -> None:
    """Record that `worker` is alive at `now`."""
    if session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.worker == worker)
                       .values(beat_at=now)).rowcount == 0:  # type: ignore[attr-defined]
        session.add(WorkerHeartbeat(worker=worker, started_at=now, beat_at=now))
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER))


def forget(session: Session, worker: str) -> None:
    """A worker that stops cleanly says so, so /health does not wait for its heartbeat to go stale."""
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker == worker))


def live_workers(session: Session, now: datetime, stale: timedelta) -> int:
    """Workers whose heartbeat is younger than `stale`."""
    return session.scalar(select(func.count()).select_from(WorkerHeartbeat)
                          .where(WorkerHeartbeat.beat_at >= now - stale)) or 0


@dataclass(frozen=True)
class Background:
    """The background work as the database sees it at `now`."""

    last_beat: datetime | None  # the newest heartbeat of any worker
    live_workers: int  # workers whose heartbeat is younger than the staleness limit
    due: int  # outbound messages and webhook deliveries whose time has come
    oldest_due: datetime | None  # the time the longest-waiting of them became due


def background(session: Session, now: datetime, stale: timedelta) -> Background:
    last_beat, live = session.execute(
        select(func.max(WorkerHeartbeat.beat_at),
               func.count().filter(WorkerHeartbeat.beat_at >= now - stale))).one()
    outbound_due, outbound_oldest = session.execute(
        select(func.count(), func.min(Message.next_attempt_at))
        .where(Message.direction == Direction.OUTBOUND,
               Message.state.in_([MessageState.QUEUED, MessageState.RETRYING]),
               Message.next_attempt_at <= now)).one()
    deliveries_due, deliveries_oldest = session.execute(
        select(func.count(), func.min(WebhookDelivery.next_attempt_at))
        .where(WebhookDelivery.state == DeliveryState.PENDING, WebhookDelivery.next_attempt_at <= now)).one()
    oldest = min((t for t in (outbound_oldest, deliveries_oldest) if t is not None), default=None)
    return Background(last_beat, live, outbound_due + deliveries_due, oldest)
