"""Webhooks: an organisation's events POSTed to its subscribed URLs, signed, retried until delivered.

What a consumer receives (one request per event and subscription)::

    POST <subscription url>
    Content-Type: application/json
    Peppol-AP-Event-Id: 5b0c...          the event's id, the same on every retry: drop repeats by it
    Peppol-AP-Event-Type: inbound.received
    Peppol-AP-Signature: t=1763712000,v1=<hex HMAC-SHA256(secret, b"1763712000." + body)>

    {"created_at": "2026-11-21T19:40:00+00:00", "data": {...}, "id": "5b0c...", "type": "inbound.received"}

Verifying (Stripe's scheme): take `t` and every `v1` from the header, compute HMAC-SHA256 with the
subscription secret over `f"{t}."` followed by the raw body bytes, compare in constant time with any `v1`, and
refuse a `t` more than a few minutes from your clock (a replayed request). `verify_signature` does exactly that.

Delivery is at least once: a delivery is marked delivered only after a 2xx answer, so a consumer that answered
but whose answer got lost sees the event again. Anything else (other status, redirect, timeout, refused
connection) is retried with exponential backoff and jitter until the retry policy gives up; then the delivery
is `failed` and stays in the history. Events that happened before a subscription existed are not replayed to
it; `GET /api/v1/events` serves those to a consumer that polls.

recommand's webhooks are fire-and-forget and unsigned; phoss-ap's forwarding retries 5 times from 1 minute.
The shape here follows Stripe's signed, retried webhook deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accesspoint.gateway import Gateway
from accesspoint.store.database import claim
from accesspoint.store.models import DeliveryState, Event, WebhookDelivery, WebhookSubscription
from accesspoint.store.types import utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Peppol-AP-Signature"
EVENT_ID_HEADER = "Peppol-AP-Event-Id"
EVENT_TYPE_HEADER = "Peppol-AP-Event-Type"
SIGNATURE_SCHEME = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix that marks secrets, not a secret)
MIN_SECRET_LENGTH = 16
EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

# the event types the gateway itself creates; subscriptions may name others that later versions add
INBOUND_RECEIVED = "inbound.received"
INBOUND_ACKED = "inbound.acked"

# connect / read timeouts as phoss-ap uses for its forwarding; a consumer that needs longer should queue the event
TIMEOUTS = (5.0, 10.0)
# a claimed delivery is not picked again before this: longer than one POST can take with the timeouts above
LEASE = timedelta(minutes=2)
BATCH = 50
# how much of a failing answer's body is kept as last_error
ERROR_EXCERPT = 300
USER_AGENT = "peppol-ap-webhooks/1"


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed delivery again: first_delay × 2^(n-1), at most max_delay, ±jitter; give up after
    max_attempts tries or once the delivery is max_age old (30 s, 1 min, 2 min, ... 1 h: about 24 tries a day)."""

    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 30
    max_age: timedelta = timedelta(hours=24)
    jitter: float = 0.2

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait after the `attempts`-th failed try. Jitter spreads retries of many deliveries that failed
        together (a consumer outage) so they do not all come back in the same second."""
        base = min(self.first_delay * (2 ** min(attempts - 1, 32)), self.max_delay)
        return base * (1 + rng.uniform(-self.jitter, self.jitter))

    def gives_up(self, attempts: int, age: timedelta) -> bool:
        return attempts >= self.max_attempts or age >= self.max_age


DEFAULT_POLICY = RetryPolicy()


# --- signing --------------------------------------------------------------------------------------

def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Peppol-AP-Signature` header value for `body` sent at unix time `timestamp`."""
    return f"t={timestamp},{SIGNATURE_SCHEME}={_mac(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """Whether `header` is a valid signature of `body` made with `secret` within `tolerance` seconds of `now`.

    Several `v1` values are accepted (a consumer rotating secrets may be sent both); unknown schemes are ignored.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# --- events and their deliveries ------------------------------------------------------------------

def event_document(event: Event) -> dict[str, Any]:
    """The JSON form of an event: the webhook body and the items of `GET /api/v1/events`."""
    return {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "message_id": event.message_id,
        "data": event.data or {},
    }


def event_body(event: Event) -> bytes:
    """The webhook body: the same bytes on every retry (keys sorted), so a consumer may also hash it."""
    return json.dumps(event_document(event), sort_keys=True, separators=(",", ":")).encode("utf-8")


def subscribed(subscription: WebhookSubscription, event_type: str) -> bool:
    """An empty event list subscribes to every event type."""
    return not subscription.events or event_type in subscription.events


def enqueue_deliveries(session: Session, event: Event) -> int:
    """Create a pending delivery of `event` for every active subscription of its organisation that wants it.

    Call it in the transaction that creates the event, so an event is never committed without its deliveries
    (and a rolled-back event leaves none). Returns how many deliveries were created.
    """
    if event.organisation_id is None:
        return 0
    if event.id is None or event.created_at is None:
        session.add(event)
        session.flush()
    subscriptions = session.scalars(
        select(WebhookSubscription).where(
            WebhookSubscription.organisation_id == event.organisation_id, WebhookSubscription.active.is_(True)
        )
    )
    created = 0
    for subscription in subscriptions:
        if subscribed(subscription, event.type):
            session.add(WebhookDelivery(event_id=event.id, subscription_id=subscription.id,
                                        state=DeliveryState.PENDING, next_attempt_at=event.created_at))
            created += 1
    return created


def record_event(session: Session, event_type: str, organisation_id: int, *, message_id: str | None = None,
                 data: dict[str, Any] | None = None) -> Event:
    """Create an event and its webhook deliveries in the caller's transaction."""
    if not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise ValueError(f"event type {event_type!r} must look like 'inbound.received'")
    event = Event(type=event_type, organisation_id=organisation_id, message_id=message_id, data=data or {},
                  created_at=utcnow())
    session.add(event)
    session.flush()
    enqueue_deliveries(session, event)
    return event


# --- sending --------------------------------------------------------------------------------------

def claim_deliveries(session: Session, now: datetime, limit: int = BATCH, lease: timedelta = LEASE) -> list[int]:
    """Claim up to `limit` due deliveries and commit: their next attempt moves `lease` ahead and their attempt
    count goes up before anything is sent, so a worker that dies mid-POST leaves the delivery to be retried
    after the lease, and a delivery that crashes its worker still runs out of attempts.

    Claimed through `store.database.claim`, so the locking rules are those of every queue.
    """
    query = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.state == DeliveryState.PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )

    def mark(ids: list[int]) -> None:
        if ids:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(next_attempt_at=now + lease, attempts=WebhookDelivery.attempts + 1)
            )

    return claim(session, query, mark)


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    status: int | None
    error: str | None


def _post(http: requests.Session, url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
    try:
        # redirects are not followed: the signed event would go to a place the organisation did not subscribe
        with http.post(url, data=body, headers=headers, timeout=TIMEOUTS, allow_redirects=False,
                       stream=True) as response:
            if 200 <= response.status_code < 300:
                return _Outcome(True, response.status_code, None)
            excerpt = response.raw.read(ERROR_EXCERPT, decode_content=True) or b""
            reason = f"HTTP {response.status_code} {response.reason or ''}".strip()
            if 300 <= response.status_code < 400:
                reason += f" (redirect to {response.headers.get('Location', '?')}; redirects are not followed)"
            text = excerpt.decode("utf-8", "replace").strip()
            return _Outcome(False, response.status_code, f"{reason}: {text}" if text else reason)
    except requests.RequestException as exc:
        return _Outcome(False, None, f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class _Claimed:
    attempts: int
    created_at: datetime
    active: bool
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes


def _load(gateway: Gateway, delivery_id: int) -> _Claimed | None:
    with gateway.read() as session:
        row = session.execute(
            select(WebhookDelivery, Event, WebhookSubscription)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.id == delivery_id)
        ).one_or_none()
        if row is None:  # the subscription was deleted since the claim
            return None
        delivery, event, subscription = row
        return _Claimed(delivery.attempts, delivery.created_at, subscription.active, subscription.url,
                        subscription.secret, event.id, event.type, event_body(event))


def _attempt(gateway: Gateway, delivery_id: int, http: requests.Session, clock: Callable[[], datetime],
             policy: RetryPolicy, rng: random.Random) -> None:
    claimed = _load(gateway, delivery_id)
    if claimed is None:
        return
    if not claimed.active:
        outcome = _Outcome(False, None, "the subscription was deactivated")
    else:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: claimed.event_id,
            EVENT_TYPE_HEADER: claimed.event_type,
            SIGNATURE_HEADER: sign(claimed.secret, int(clock().timestamp()), claimed.body),
        }
        # no transaction is open while the consumer takes its time
        outcome = _post(http, claimed.url, claimed.body, headers)
    now = clock()
    values: dict[str, Any] = {"last_status": outcome.status, "last_error": outcome.error}
    if outcome.delivered:
        values.update(state=DeliveryState.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif not claimed.active or policy.gives_up(claimed.attempts, now - claimed.created_at):
        values.update(state=DeliveryState.FAILED, next_attempt_at=None)
    else:
        values.update(next_attempt_at=now + policy.delay(claimed.attempts, rng))
    with gateway.read() as session:
        # only while the claim is still ours: a worker whose lease ran out must not overwrite a newer attempt
        result = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == claimed.attempts,
                   WebhookDelivery.state == DeliveryState.PENDING)
            .values(**values)
        )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        log.warning("webhook delivery %s was claimed again while attempt %s ran; its result is dropped",
                    delivery_id, claimed.attempts)
    elif not outcome.delivered:
        log.info("webhook delivery %s attempt %s failed: %s", delivery_id, claimed.attempts, outcome.error)


def deliver_due(gateway: Gateway, *, clock: Callable[[], datetime] = utcnow, policy: RetryPolicy = DEFAULT_POLICY,
                http: requests.Session | None = None, limit: int = BATCH, rng: random.Random | None = None) -> int:
    """Worker task: POST every due delivery once; returns how many were attempted."""
    ids = gateway.claim(lambda session: claim_deliveries(session, clock(), limit))
    if not ids:
        return 0
    owned = http is None
    client = http or requests.Session()
    jitter = rng or random.Random()  # noqa: S311 (jitter, not a secret)
    try:
        for delivery_id in ids:
            _attempt(gateway, delivery_id, client, clock, policy, jitter)
    finally:
        if owned:
            client.close()
    return len(ids)
