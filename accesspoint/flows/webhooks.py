"""Webhooks: an organisation's events POSTed to its subscribed URLs, signed, retried until delivered.

Deliveries follow Standard Webhooks (https://www.standardwebhooks.com/), so its libraries verify them
(`standardwebhooks.Webhook(secret).verify(body, headers)`). What a consumer receives, one request per event and
subscription::

    POST <subscription url>
    Content-Type: application/json
    webhook-id: 5b0c...                  the event's id, the same on every retry: drop repeats by it
    webhook-timestamp: 1763712000        unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>
    Peppol-AP-Event-Type: inbound.received

    {"created_at": "2026-11-21T19:40:00+00:00", "data": {...}, "id": "5b0c...", "type": "inbound.received"}

The secret is `whsec_<base64>`; the HMAC key is the base64-decoded part. `webhook-signature` may list several
space-separated signatures (secret rotation); a consumer accepts the request when one matches and refuses a
timestamp more than a few minutes from its clock (a replay). `verify_signature` does exactly that. Secrets made
before Standard Webhooks (signed `Peppol-AP-Signature: t=..,v1=<hex>`, HMAC key = the secret's UTF-8 bytes) were
rewritten by migration 0004 to `whsec_` + base64 of that key (of its SHA-256 digest when longer than 64 bytes,
which HMAC uses in its place), so their signatures verify with the secret the subscriber has (README: webhooks).

Delivery is at least once: a delivery is marked delivered only after a 2xx answer, so a consumer that answered
but whose answer got lost sees the event again. Anything else (other status, redirect, timeout, refused
connection, an address the egress policy refuses) is retried with exponential backoff and jitter until the retry
policy gives up; then the delivery is `failed` and stays in the history. The history keeps the status and why an
attempt failed in our words, never the answer's body: a subscriber must not use us to read what an internal
server says. Events that happened before a subscription existed are not replayed to it; `GET /api/v1/events`
serves those to a consumer that polls.

The URL is someone else's choice: each delivery resolves its host and connects only to addresses the egress policy
allows (base.egress: public addresses, https outside the local environment), and no redirect is followed.

recommand's webhooks are fire-and-forget and unsigned; phoss-ap's forwarding retries 5 times from 1 minute.
The retries follow Stripe's signed, retried webhook deliveries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accesspoint.gateway import Gateway
from accesspoint.store.database import claim
from accesspoint.store.models import DeliveryState, Event, WebhookDelivery, WebhookSubscription
from accesspoint.store.types import utcnow
from base.bounded import connection_reason
from base.egress import EgressRefused
from base.egress_http import egress_session

log = logging.getLogger(__name__)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
EVENT_TYPE_HEADER = "Peppol-AP-Event-Type"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix that marks secrets, not a secret)
# the key sizes Standard Webhooks asks for; 32 random bytes are generated
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

# the event types the gateway creates: the one list the APIs' schemas enumerate (accesspoint.web.schemas)
INBOUND_RECEIVED = "inbound.received"
INBOUND_ACKED = "inbound.acked"
OUTBOUND_SENT = "outbound.sent"
OUTBOUND_RETRYING = "outbound.retrying"
OUTBOUND_FAILED = "outbound.failed"
# the BIS validation report of a received message is stored (accesspoint.flows.validation)
INBOUND_VALIDATED = "inbound.validated"
EVENT_TYPES = (INBOUND_RECEIVED, INBOUND_ACKED, INBOUND_VALIDATED, OUTBOUND_SENT, OUTBOUND_RETRYING, OUTBOUND_FAILED)

# connect / read timeouts as phoss-ap uses for its forwarding; a consumer that needs longer should queue the event
TIMEOUTS = (5.0, 10.0)
# a claimed delivery is not picked again before this: longer than one POST can take with the timeouts above
LEASE = timedelta(minutes=2)
BATCH = 50
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
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError when `secret` is not one. Any key length is taken:
    secrets migrated from the old scheme (16 to 200 characters) keep theirs; new ones are checked by the API."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error:
        raise ValueError(f"the part after {SECRET_PREFIX} must be base64") from None
    if not key:
        raise ValueError("the key is empty")
    return key


def _mac(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for `body` sent at unix time `timestamp`."""
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION},{_mac(secret_key(secret), message_id, timestamp, body)}",
    }


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """Whether `headers` (webhook-id, webhook-timestamp, webhook-signature; names in any case) sign `body` with
    `secret` within `tolerance` seconds of `now`.

    Several space-separated signatures are accepted (a consumer rotating secrets may be sent both); other versions
    than v1 are ignored.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get(ID_HEADER, "")
    timestamp = lowered.get(TIMESTAMP_HEADER, "")
    if not message_id or not timestamp.isascii() or not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = _mac(secret_key(secret), message_id, int(timestamp), body)
    candidates = [value for version, _, value in (part.partition(",") for part in
                                                  lowered.get(SIGNATURE_HEADER, "").split())
                  if version == SIGNATURE_VERSION]
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


def _status_text(status: int) -> str:
    """`HTTP 503 Service Unavailable` with the standard phrase: the consumer's own reason phrase is answer content."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _post(http: requests.Session, url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
    """POST once. The answer's body is never read: nothing of what the server says beyond its status is kept."""
    try:
        # redirects are not followed: the signed event would go to a place the organisation did not subscribe
        with http.post(url, data=body, headers=headers, timeout=TIMEOUTS, allow_redirects=False,
                       stream=True) as response:
            status = response.status_code
            if 200 <= status < 300:
                return _Outcome(True, status, None)
            reason = _status_text(status)
            if 300 <= status < 400:
                reason += " (a redirect; redirects are not followed)"
            return _Outcome(False, status, reason)
    except EgressRefused as exc:
        return _Outcome(False, None, f"not delivered: {exc.reason}")
    except requests.Timeout:
        return _Outcome(False, None, f"no answer within {TIMEOUTS[0]:g} s to connect and {TIMEOUTS[1]:g} s to answer")
    except requests.ConnectionError as exc:
        return _Outcome(False, None, f"cannot connect: {connection_reason(exc)}")
    except requests.RequestException as exc:
        return _Outcome(False, None, f"{type(exc).__name__}: {connection_reason(exc)}")


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
            EVENT_TYPE_HEADER: claimed.event_type,
            **signature_headers(claimed.secret, claimed.event_id, int(clock().timestamp()), claimed.body),
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
                limit: int = BATCH, rng: random.Random | None = None) -> int:
    """Worker task: POST every due delivery once, only where the gateway's egress policy allows; returns how many
    were attempted."""
    ids = gateway.claim(lambda session: claim_deliveries(session, clock(), limit))
    if not ids:
        return 0
    jitter = rng or random.Random()  # noqa: S311 (jitter, not a secret)
    with egress_session(gateway.egress) as client:
        for delivery_id in ids:
            _attempt(gateway, delivery_id, client, clock, policy, jitter)
    return len(ids)
