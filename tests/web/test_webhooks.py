"""Webhooks against a real HTTP receiver on 127.0.0.1: Standard Webhooks signatures (checked with the
standardwebhooks library), retries with backoff, giving up, claims, the subscription API with its delivery history,
and the events API for polling consumers."""

from __future__ import annotations

import base64
import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from accesspoint.flows.webhooks import (
    EVENT_TYPE_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    claim_deliveries,
    deliver_due,
    enqueue_deliveries,
    new_secret,
    record_event,
    signature_headers,
    verify_signature,
)
from accesspoint.gateway import Gateway
from accesspoint.store.models import DeliveryState, Event, WebhookDelivery, WebhookSubscription
from accesspoint.worker import run_worker
from tests.web.conftest import Org, StoreInbound

SECRET = "whsec_" + base64.b64encode(b"test-secret-0123456789-abcdefghij").decode()


class Receiver:
    """A webhook consumer: answers with the queued statuses (then 200) and records every request."""

    def __init__(self, statuses: list[int] | None = None, headers: dict[str, str] | None = None,
                 on_request: Callable[[], None] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.extra_headers = headers or {}
        self.on_request = on_request
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                if receiver.on_request is not None:
                    receiver.on_request()
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                payload = b"consumer says no" if status >= 300 else b"ok"
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/peppol"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


class Clock:
    def __init__(self) -> None:
        # a little ahead of the real time at which the events are created, so they are due
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def subscribe(gateway: Gateway, org: Org, url: str, events: list[str] | None = None, active: bool = True) -> int:
    with gateway.read() as session:
        subscription = WebhookSubscription(organisation_id=org.id, url=url, secret=SECRET, events=events or [],
                                           active=active)
        session.add(subscription)
        session.flush()
        return subscription.id


def deliveries(gateway: Gateway) -> list[WebhookDelivery]:
    with gateway.sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


# --- signing ------------------------------------------------------------------------------------------

def test_signature_verifies_only_the_signed_body_secret_and_time() -> None:
    body = b'{"id":"e1"}'
    headers = signature_headers(SECRET, "e1", 1_763_712_000, body)
    assert headers[TIMESTAMP_HEADER] == "1763712000" and headers[ID_HEADER] == "e1"
    assert headers[SIGNATURE_HEADER].startswith("v1,")
    assert verify_signature(SECRET, headers, body, now=1_763_712_100)
    assert verify_signature(SECRET, {k.upper(): v for k, v in headers.items()}, body, now=1_763_712_100)
    assert not verify_signature(SECRET, headers, body + b" ", now=1_763_712_100)
    assert not verify_signature(SECRET, {**headers, ID_HEADER: "e2"}, body, now=1_763_712_100)
    assert not verify_signature(new_secret(), headers, body, now=1_763_712_100)
    assert not verify_signature(SECRET, headers, body, now=1_763_712_000 + 301)
    assert not verify_signature(SECRET, {**headers, SIGNATURE_HEADER: "v1,abc"}, body, now=1_763_712_000)
    rotated = {**headers, SIGNATURE_HEADER: f"v1,{'A' * 44} {headers[SIGNATURE_HEADER]} v1a,ignored"}
    assert verify_signature(SECRET, rotated, body, now=1_763_712_000)
    # the reference implementation agrees (its own clock: a fresh timestamp)
    fresh = signature_headers(SECRET, "e1", int(datetime.now(UTC).timestamp()), body)
    assert Webhook(SECRET).verify(body, fresh) == {"id": "e1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, fresh)


def test_generated_secrets_are_standard_webhooks_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:], validate=True)) == 32
    assert new_secret() != secret


def test_backoff_doubles_to_the_cap_with_bounded_jitter() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    for attempts, base in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (20, 3600), (80, 3600)]:
        delay = policy.delay(attempts, rng).total_seconds()
        assert base * 0.8 <= delay <= base * 1.2, attempts
    assert not policy.gives_up(29, timedelta(hours=23))
    assert policy.gives_up(30, timedelta(hours=1))
    assert policy.gives_up(3, timedelta(hours=24))


# --- enqueueing -----------------------------------------------------------------------------------------

def test_events_go_to_active_matching_subscriptions_of_their_organisation(gateway: Gateway, acme: Org,
                                                                          globex: Org) -> None:
    everything = subscribe(gateway, acme, "http://127.0.0.1:1/all")
    acks_only = subscribe(gateway, acme, "http://127.0.0.1:1/acks", ["inbound.acked"])
    subscribe(gateway, acme, "http://127.0.0.1:1/off", active=False)
    subscribe(gateway, globex, "http://127.0.0.1:1/globex")
    with gateway.read() as session:
        record_event(session, "inbound.received", acme.id, data={"n": 1})
        record_event(session, "inbound.acked", acme.id)
        # an event built by hand is flushed on the way in
        assert enqueue_deliveries(session, Event(type="outbound.sent", organisation_id=acme.id)) == 1
    assert sorted(d.subscription_id for d in deliveries(gateway)) == sorted([everything, everything, acks_only,
                                                                                everything])
    with gateway.read() as session, pytest.raises(ValueError, match="event type"):
        record_event(session, "Inbound Received", acme.id)


def test_events_before_the_subscription_are_not_replayed(gateway: Gateway, acme: Org, receiver: Receiver,
                                                         store_inbound: StoreInbound) -> None:
    store_inbound(acme)
    subscribe(gateway, acme, receiver.url)
    assert deliver_due(gateway, clock=Clock()) == 0
    later = store_inbound(acme)
    assert deliver_due(gateway, clock=Clock()) == 1
    assert json.loads(receiver.requests[0][1])["id"] == later.event_id


# --- delivering ---------------------------------------------------------------------------------------

def test_retries_with_backoff_until_delivered_and_the_event_id_is_stable(
        gateway: Gateway, client: FlaskClient, acme: Org, store_inbound: StoreInbound) -> None:
    receiver = Receiver([500, 503])
    try:
        subscription = subscribe(gateway, acme, receiver.url)
        stored = store_inbound(acme)
        clock, rng = Clock(), random.Random(1)
        assert deliver_due(gateway, clock=clock, rng=rng) == 1
        [delivery] = deliveries(gateway)
        assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
        # the status in our words; nothing of the answer's body
        assert delivery.last_error == "HTTP 500 Internal Server Error"
        assert timedelta(seconds=24) <= delivery.next_attempt_at - clock.now <= timedelta(seconds=36)  # type: ignore[operator]

        assert deliver_due(gateway, clock=clock, rng=rng) == 0  # not due yet
        clock.advance(seconds=37)
        assert deliver_due(gateway, clock=clock, rng=rng) == 1
        [delivery] = deliveries(gateway)
        assert (delivery.attempts, delivery.last_status) == (2, 503)
        assert timedelta(seconds=48) <= delivery.next_attempt_at - clock.now <= timedelta(seconds=72)  # type: ignore[operator]
        clock.advance(seconds=73)
        assert deliver_due(gateway, clock=clock, rng=rng) == 1
        [delivery] = deliveries(gateway)
        assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 3, 200)
        assert delivery.delivered_at == clock.now and delivery.next_attempt_at is None
        clock.advance(hours=2)
        assert deliver_due(gateway, clock=clock, rng=rng) == 0
    finally:
        receiver.close()

    assert len(receiver.requests) == 3
    bodies = {body for _, body in receiver.requests}
    assert len(bodies) == 1, "every retry carries the same body"
    event = json.loads(bodies.pop())
    assert event["id"] == stored.event_id and event["type"] == "inbound.received"
    assert event["data"]["message_id"] == stored.id == event["message_id"]
    stamps = []
    for headers, body in receiver.requests:
        assert headers[ID_HEADER] == stored.event_id
        assert headers[EVENT_TYPE_HEADER] == "inbound.received"
        assert headers["Content-Type"] == "application/json"
        stamp = int(headers[TIMESTAMP_HEADER])
        stamps.append(stamp)
        assert verify_signature(SECRET, headers, body, now=stamp)
    assert stamps == sorted(stamps) and len(set(stamps)) == 3

    history = client.get(f"/api/v1/webhooks/{subscription}/deliveries", headers=acme.auth).get_json()
    [item] = history["items"]
    assert item["event_id"] == stored.event_id and item["event_type"] == "inbound.received"
    assert (item["state"], item["attempts"], item["last_status"], item["last_error"]) == ("delivered", 3, 200, None)
    assert item["next_attempt_at"] is None and item["delivered_at"]


def test_a_consumer_verifies_deliveries_with_the_standardwebhooks_library(
        gateway: Gateway, client: FlaskClient, acme: Org, store_inbound: StoreInbound) -> None:
    verdicts: list[bool] = []
    secret: list[str] = []

    def verify() -> None:
        headers, body = receiver.requests[-1]
        try:
            Webhook(secret[0]).verify(body, headers)
            verdicts.append(True)
        except WebhookVerificationError:
            verdicts.append(False)

    receiver = Receiver(on_request=verify)
    try:
        created = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": receiver.url}).get_json()
        secret.append(created["secret"])
        store_inbound(acme)
        assert deliver_due(gateway, clock=Clock()) == 1
    finally:
        receiver.close()
    assert verdicts == [True]
    assert deliveries(gateway)[0].state == "delivered"


def test_a_dead_receiver_fails_after_the_attempt_cap(gateway: Gateway, acme: Org,
                                                     store_inbound: StoreInbound) -> None:
    subscribe(gateway, acme, dead_url())
    store_inbound(acme)
    clock, policy = Clock(), RetryPolicy(max_attempts=4)
    for attempt in range(1, 5):
        assert deliver_due(gateway, clock=clock, policy=policy) == 1, attempt
        [delivery] = deliveries(gateway)
        assert delivery.attempts == attempt and delivery.last_status is None
        assert delivery.last_error == "cannot connect: Connection refused"
        clock.advance(hours=2)
    assert delivery.state == "failed" and delivery.next_attempt_at is None
    assert deliver_due(gateway, clock=clock, policy=policy) == 0


def test_a_delivery_older_than_the_age_cap_is_given_up(gateway: Gateway, acme: Org,
                                                       store_inbound: StoreInbound) -> None:
    subscribe(gateway, acme, dead_url())
    store_inbound(acme)
    clock = Clock()
    assert deliver_due(gateway, clock=clock) == 1
    assert deliveries(gateway)[0].state == "pending"
    clock.advance(hours=25)
    assert deliver_due(gateway, clock=clock) == 1
    assert deliveries(gateway)[0].state == "failed"


def test_redirects_are_not_followed(gateway: Gateway, acme: Org, store_inbound: StoreInbound) -> None:
    receiver = Receiver([302], headers={"Location": "http://127.0.0.1:1/elsewhere"})
    try:
        subscribe(gateway, acme, receiver.url)
        store_inbound(acme)
        assert deliver_due(gateway, clock=Clock()) == 1
    finally:
        receiver.close()
    [delivery] = deliveries(gateway)
    assert delivery.state == "pending" and delivery.last_status == 302
    assert delivery.last_error == "HTTP 302 Found (a redirect; redirects are not followed)"
    assert len(receiver.requests) == 1


def test_a_deactivated_subscription_fails_its_pending_deliveries(gateway: Gateway, acme: Org, receiver: Receiver,
                                                                 store_inbound: StoreInbound) -> None:
    subscription = subscribe(gateway, acme, receiver.url)
    store_inbound(acme)
    with gateway.read() as session:
        session.get(WebhookSubscription, subscription).active = False  # type: ignore[union-attr]
    assert deliver_due(gateway, clock=Clock()) == 1
    [delivery] = deliveries(gateway)
    assert delivery.state == "failed" and "deactivated" in (delivery.last_error or "")
    assert receiver.requests == []


def test_the_worker_delivers(gateway: Gateway, acme: Org, receiver: Receiver, store_inbound: StoreInbound) -> None:
    subscribe(gateway, acme, receiver.url)
    stored = store_inbound(acme)
    assert run_worker(gateway, once=True) == 1
    assert receiver.requests[0][0][ID_HEADER] == stored.event_id
    assert deliveries(gateway)[0].state == "delivered"


# --- claims -----------------------------------------------------------------------------------------

def test_a_claim_is_committed_and_leased(gateway: Gateway, acme: Org, store_inbound: StoreInbound) -> None:
    subscribe(gateway, acme, dead_url())
    for _ in range(3):
        store_inbound(acme)
    now = Clock().now
    with gateway.sessions() as first, gateway.sessions() as second:
        claimed = claim_deliveries(first, now, limit=2)
        assert len(claimed) == 2 and not first.in_transaction()
        rest = claim_deliveries(second, now)
        assert len(rest) == 1 and set(rest).isdisjoint(claimed)
        assert claim_deliveries(second, now + timedelta(seconds=60)) == []
        # a worker that died mid-POST: after the lease the delivery is claimed again, its attempts counted
        again = claim_deliveries(second, now + timedelta(minutes=3))
    assert sorted(again) == sorted(claimed + rest)
    assert {d.attempts for d in deliveries(gateway)} == {2}


def test_a_result_that_comes_after_the_lease_does_not_overwrite_the_newer_claim(
        gateway: Gateway, acme: Org, store_inbound: StoreInbound) -> None:
    clock = Clock()

    def another_worker_takes_over() -> None:
        # the first POST outlived its lease: a second worker claimed the delivery meanwhile
        with gateway.sessions() as session:
            assert len(claim_deliveries(session, clock.now + timedelta(minutes=3))) == 1

    receiver = Receiver(on_request=another_worker_takes_over)
    try:
        subscribe(gateway, acme, receiver.url)
        store_inbound(acme)
        assert deliver_due(gateway, clock=clock) == 1
    finally:
        receiver.close()
    [delivery] = deliveries(gateway)
    # the late 200 is dropped; the second worker's attempt decides (and the consumer dedupes by event id)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 2, None)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_claims_skip_rows_another_worker_holds(gateway: Gateway, acme: Org,
                                                          store_inbound: StoreInbound) -> None:
    subscribe(gateway, acme, dead_url())
    for _ in range(3):
        store_inbound(acme)
    now = Clock().now
    with gateway.sessions() as holder, gateway.sessions() as worker:
        held = holder.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id).limit(1)
                              .with_for_update()).one()
        claimed = claim_deliveries(worker, now)
        assert len(claimed) == 2 and held not in claimed
        holder.rollback()
        assert claim_deliveries(worker, now) == [held]


# --- the subscription API -------------------------------------------------------------------------------

def test_subscription_api(gateway: Gateway, client: FlaskClient, acme: Org, globex: Org) -> None:
    created = client.post("/api/v1/webhooks", headers=acme.auth,
                          json={"url": "https://erp.example/hooks", "events": ["inbound.received"]})
    assert created.status_code == 201
    document = created.get_json()
    assert document["secret"].startswith("whsec_") and len(document["secret"]) > 40
    assert document["events"] == ["inbound.received"] and document["active"] is True
    assert created.headers["Location"] == f"/api/v1/webhooks/{document['id']}"
    given = client.post("/api/v1/webhooks", headers=acme.auth,
                        json={"url": "https://erp.example:8443/in", "secret": SECRET}).get_json()
    assert given["secret"] == SECRET and given["events"] == []

    listed = client.get("/api/v1/webhooks", headers=acme.auth).get_json()["items"]
    assert [item["id"] for item in listed] == [document["id"], given["id"]]
    assert all("secret" not in item for item in listed)
    shown = client.get(f"/api/v1/webhooks/{document['id']}", headers=acme.auth).get_json()
    assert "secret" not in shown and shown["url"] == "https://erp.example/hooks"
    assert client.get("/api/v1/webhooks", headers=globex.auth).get_json()["items"] == []
    for method, path in [("get", ""), ("delete", ""), ("get", "/deliveries")]:
        response = getattr(client, method)(f"/api/v1/webhooks/{document['id']}{path}", headers=globex.auth)
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert client.get("/api/v1/webhooks/99999999999", headers=acme.auth).status_code == 404

    assert client.delete(f"/api/v1/webhooks/{document['id']}", headers=acme.auth).status_code == 204
    assert client.get(f"/api/v1/webhooks/{document['id']}", headers=acme.auth).status_code == 404
    with gateway.sessions() as session:
        assert session.scalars(select(WebhookSubscription.id)).all() == [given["id"]]


def test_subscription_requests_are_validated(client: FlaskClient, acme: Org) -> None:
    cases = [
        ({}, "url"), ({"url": "ftp://example.org/x"}, "url"), ({"url": "https:///nohost"}, "url"),
        ({"url": "http://h:99999/"}, "url"), ({"url": 5}, "url"),
        ({"url": "https://h/", "events": "inbound.received"}, "events"),
        ({"url": "https://h/", "events": ["Inbound"]}, "events"),
        ({"url": "https://h/", "secret": "whsec_" + base64.b64encode(b"23 bytes are too short.").decode()}, "secret"),
        ({"url": "https://h/", "secret": "whsec_not base64 at all!"}, "secret"),
        ({"url": "https://h/", "secret": "a-secret-of-my-own-without-prefix"}, "secret"),
    ]
    for body, parameter in cases:
        response = client.post("/api/v1/webhooks", headers=acme.auth, json=body)
        assert response.status_code == 422, body
        assert response.get_json()["parameter"] == parameter, body
        assert response.get_json()["errors"][0]["field"].split("[")[0] == parameter, body
    response = client.post("/api/v1/webhooks", headers=acme.auth, json=["https://h/"])
    assert response.status_code == 422 and response.get_json()["parameter"] == "body"
    response = client.post("/api/v1/webhooks", headers=acme.auth, data="url=https://h/")
    assert response.status_code == 415 and response.mimetype == "application/problem+json"
    response = client.post("/api/v1/webhooks", headers=acme.auth, data='{"url": ', content_type="application/json")
    assert response.status_code == 400 and response.get_json()["parameter"] == "body"


def test_delivery_history_pages_newest_first(gateway: Gateway, client: FlaskClient, acme: Org,
                                             store_inbound: StoreInbound) -> None:
    subscription = subscribe(gateway, acme, dead_url())
    events = [store_inbound(acme).event_id for _ in range(5)]
    seen, url = [], f"/api/v1/webhooks/{subscription}/deliveries?limit=2"
    while url:
        page = client.get(url, headers=acme.auth).get_json()
        seen += [item["event_id"] for item in page["items"]]
        url = page["next"]
    assert seen == events[::-1]
    pending = client.get(f"/api/v1/webhooks/{subscription}/deliveries?state=pending", headers=acme.auth)
    assert len(pending.get_json()["items"]) == 5
    assert client.get(f"/api/v1/webhooks/{subscription}/deliveries?state=late", headers=acme.auth).status_code == 400
    assert all(d.state == DeliveryState.PENDING for d in deliveries(gateway))


# --- the events API ---------------------------------------------------------------------------------------

def test_events_api_for_polling_consumers(client: FlaskClient, acme: Org, globex: Org,
                                          store_inbound: StoreInbound) -> None:
    first, second = store_inbound(acme), store_inbound(acme)
    store_inbound(globex)
    assert client.post(f"/api/v1/inbound/{first.id}/ack", headers=acme.auth).status_code == 200
    everything = client.get("/api/v1/events", headers=acme.auth).get_json()
    assert [(e["type"], e["message_id"]) for e in everything["items"]] == [
        ("inbound.received", first.id), ("inbound.received", second.id), ("inbound.acked", first.id)]
    assert everything["next"] is None
    page = client.get("/api/v1/events?limit=2", headers=acme.auth).get_json()
    assert page["next"].startswith("/api/v1/events?limit=2&cursor=")
    rest = client.get(page["next"].replace("limit=2", "limit=50"), headers=acme.auth).get_json()
    assert [e["id"] for e in page["items"] + rest["items"]] == [e["id"] for e in everything["items"]]
    acks = client.get("/api/v1/events?type=inbound.acked", headers=acme.auth).get_json()["items"]
    assert [e["data"]["message_id"] for e in acks] == [first.id]
    since = everything["items"][2]["created_at"]
    later = client.get("/api/v1/events", headers=acme.auth, query_string={"since": since}).get_json()["items"]
    assert [e["type"] for e in later] == ["inbound.acked"]
    assert client.get("/api/v1/events?type=no", headers=acme.auth).status_code == 400
