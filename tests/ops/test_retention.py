"""Retention on SQLite and PostgreSQL: what is removed and what is kept (open messages, pending webhook deliveries,
recent ones), the dry run changes nothing, the CLI prints it, /metrics counts the removals, and the APIs say
that a removed payload is gone."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from accesspoint.cli.main import cli
from accesspoint.config import ConfigError, load_config
from accesspoint.flows import retention
from accesspoint.flows.webhooks import INBOUND_RECEIVED, record_event
from accesspoint.gateway import Gateway
from accesspoint.store.models import (
    ApiClient,
    ApiRole,
    Attempt,
    DeliveryState,
    Direction,
    Event,
    Message,
    MessageState,
    Organisation,
    Receipt,
    WebhookDelivery,
    WebhookSubscription,
)
from accesspoint.store.types import utcnow
from accesspoint.worker import TASKS
from tests.ops.helpers import value
from tests.receiving.conftest import Receiver, ReceiverFactory

DAY = timedelta(days=1)


@dataclass
class World:
    rx: Receiver
    organisation_id: int
    token: str
    ids: dict[str, str]

    @property
    def gateway(self) -> Gateway:
        return self.rx.gateway


def _message(gw: Gateway, organisation_id: int, direction: Direction, state: MessageState, age: timedelta, *,
             wire: bool = False, receipt: bool = False, pending_delivery: bool = False) -> str:
    """A message in `state` since `age` ago (created a day before), with its payload (and wire copy) stored."""
    now = utcnow()
    since = now - age
    blob = gw.blobs.put(io.BytesIO(b"<sbd/>"))
    wire_blob = gw.blobs.put(io.BytesIO(b"--wire--")) if wire else None
    with gw.read() as session:
        message = Message(direction=direction, organisation_id=organisation_id, state=state,
                          as4_message_id=f"{hashlib.sha256(blob.key.encode()).hexdigest()[:20]}@peer",
                          sbdh_instance_id=blob.key, blob_key=blob.key, payload_size=blob.size,
                          payload_sha256=blob.sha256, wire_blob_key=wire_blob.key if wire_blob else None,
                          wire_content_type="multipart/related" if wire_blob else None,
                          created_at=since - DAY, updated_at=since,
                          acked_at=since if state == MessageState.ACKED else None,
                          sent_at=since if state == MessageState.SENT else None)
        session.add(message)
        session.flush()
        if receipt:
            session.add(Receipt(message_id=message.id, as4_message_id=f"r-{message.id}", ref_to_message_id="x",
                                raw=b"<receipt/>", sha256="0" * 64))
        if direction == Direction.OUTBOUND:
            session.add(Attempt(message_id=message.id, number=1))
        event = record_event(session, INBOUND_RECEIVED, organisation_id, message_id=message.id, data={})
        if not pending_delivery:
            # record_event queued deliveries for the organisation's subscription: make them done
            for delivery in session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)):
                delivery.state = DeliveryState.DELIVERED
        return message.id


@pytest.fixture
def world(make_receiver: ReceiverFactory, database_url: str) -> World:
    rx = make_receiver(database_url)
    gw = rx.gateway
    with gw.read() as session:
        organisation = Organisation(name="Acme AB", country="SE")
        session.add(organisation)
        session.flush()
        organisation_id = organisation.id
        session.add(WebhookSubscription(organisation_id=organisation_id, url="http://127.0.0.1:9/hook", secret="s",
                                        events=[INBOUND_RECEIVED]))
        client, token = ApiClient.issue("acme erp", ApiRole.NETWORK, organisation_id)
        session.add(client)
    inbound, outbound = Direction.INBOUND, Direction.OUTBOUND
    s = MessageState
    ids = {
        # removed (defaults: payloads after 90 days, failed after 30, whole messages after 3653)
        "acked_old": _message(gw, organisation_id, inbound, s.ACKED, 100 * DAY, receipt=True),
        "sent_old": _message(gw, organisation_id, outbound, s.SENT, 100 * DAY, wire=True, receipt=True),
        "failed_old": _message(gw, organisation_id, outbound, s.FAILED, 40 * DAY, wire=True),
        "acked_ancient": _message(gw, organisation_id, inbound, s.ACKED, 4000 * DAY, receipt=True),
        "sent_ancient": _message(gw, organisation_id, outbound, s.SENT, 4000 * DAY, receipt=True),
        # kept
        "acked_recent": _message(gw, organisation_id, inbound, s.ACKED, 10 * DAY),
        "failed_recent": _message(gw, organisation_id, outbound, s.FAILED, 10 * DAY),
        "new_ancient": _message(gw, organisation_id, inbound, s.NEW, 4000 * DAY),
        "received_ancient": _message(gw, organisation_id, inbound, s.RECEIVED, 4000 * DAY),
        "queued_ancient": _message(gw, organisation_id, outbound, s.QUEUED, 4000 * DAY),
        "sending_ancient": _message(gw, organisation_id, outbound, s.SENDING, 4000 * DAY),
        "retrying_ancient": _message(gw, organisation_id, outbound, s.RETRYING, 4000 * DAY),
        "acked_ancient_pending_hook": _message(gw, organisation_id, inbound, s.ACKED, 4000 * DAY,
                                               pending_delivery=True),
    }
    return World(rx, organisation_id, token, ids)


REMOVED_PAYLOADS = ("acked_old", "sent_old", "failed_old")
REMOVED_MESSAGES = ("acked_ancient", "sent_ancient")


def _state(gw: Gateway) -> dict[str, tuple[str | None, str | None, int]]:
    """{message id: (blob_key, wire_blob_key, receipts + attempts + events)} of every stored message."""
    with gw.read() as session:
        found = {}
        for message in session.scalars(select(Message)):
            related = sum(session.scalar(select(func.count()).select_from(table).where(table.message_id == message.id))
                          or 0 for table in (Receipt, Attempt, Event))
            found[message.id] = (message.blob_key, message.wire_blob_key, related)
        return found


def _blob_exists(gw: Gateway, key: str | None) -> bool:
    return key is not None and gw.blobs.exists(key)


def test_run_removes_what_is_due_and_keeps_what_is_open(world: World) -> None:
    gw, ids = world.gateway, world.ids
    before = _state(gw)
    report = retention.run(gw, dry_run=False)
    assert report.removed == {"inbound_metadata": 1, "outbound_metadata": 1, "inbound_payload": 1,
                              "outbound_payload": 1, "failed_payload": 1}
    after = _state(gw)
    for name in REMOVED_MESSAGES:
        assert ids[name] not in after
        blob, _, _ = before[ids[name]]
        assert not _blob_exists(gw, blob)
    # deleted with their message: receipts, attempts, events (and the events' deliveries)
    with gw.read() as session:
        assert session.scalar(select(func.count()).select_from(Receipt)
                              .where(Receipt.message_id.in_([ids[n] for n in REMOVED_MESSAGES]))) == 0
    for name in REMOVED_PAYLOADS:
        blob, wire, related = before[ids[name]]
        assert after[ids[name]] == (None, None, related), name  # the metadata, receipt, attempts, events stay
        assert not _blob_exists(gw, blob) and not _blob_exists(gw, wire)
    kept = set(ids) - set(REMOVED_PAYLOADS) - set(REMOVED_MESSAGES)
    for name in kept:
        assert after[ids[name]] == before[ids[name]], name
        assert _blob_exists(gw, before[ids[name]][0]), name
    with gw.read() as session:
        sent_old = session.get(Message, ids["sent_old"])
        assert sent_old.payload_sha256 and sent_old.payload_size and sent_old.wire_content_type is None
    # a second run finds nothing more
    assert retention.run(gw, dry_run=False).total == 0


def test_dry_run_changes_nothing_and_lists_what_would_go(world: World) -> None:
    gw, ids = world.gateway, world.ids
    before = _state(gw)
    report = retention.run(gw, dry_run=True)
    assert _state(gw) == before
    assert all(_blob_exists(gw, blob) for blob, _, _ in before.values())
    assert {(c.kind, c.message_id) for c in report.candidates} == {
        ("inbound_metadata", ids["acked_ancient"]), ("outbound_metadata", ids["sent_ancient"]),
        ("inbound_payload", ids["acked_old"]), ("outbound_payload", ids["sent_old"]),
        ("failed_payload", ids["failed_old"])}
    assert report.total == 5

    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(gw.config.data_dir), "PEPPOL_AP_DATABASE__URL": gw.config.database_url}
    dry = CliRunner(env=env).invoke(cli, ["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert all(ids[name] in dry.output for name in (*REMOVED_PAYLOADS, *REMOVED_MESSAGES))
    assert ids["new_ancient"] not in dry.output
    assert dry.output.strip().splitlines()[-1].startswith("would remove: inbound_metadata 1")
    assert _state(gw) == before
    done = CliRunner(env=env).invoke(cli, ["retention", "run"])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == ("removed: inbound_metadata 1, outbound_metadata 1, inbound_payload 1, "
                                   "outbound_payload 1, failed_payload 1")


def test_metrics_count_removals_by_kind(world: World) -> None:
    scrape = world.rx.client.get("/metrics").get_data(as_text=True)
    assert value(scrape, "peppol_ap_retention_removed_total", kind="inbound_payload") is None
    retention.run(world.gateway, dry_run=True)
    retention.run(world.gateway, dry_run=False)
    # another old payload, removed by a later run: the counter adds up
    _message(world.gateway, world.organisation_id, Direction.INBOUND, MessageState.ACKED, 200 * DAY)
    retention.run(world.gateway, dry_run=False)
    scrape = world.rx.client.get("/metrics").get_data(as_text=True)
    assert value(scrape, "peppol_ap_retention_removed_total", kind="inbound_payload") == 2
    for kind in ("outbound_payload", "failed_payload", "inbound_metadata", "outbound_metadata"):
        assert value(scrape, "peppol_ap_retention_removed_total", kind=kind) == 1, kind


def test_worker_task_honours_enabled_dry_run_and_interval(make_receiver: ReceiverFactory, database_url: str) -> None:
    assert "accesspoint.flows.retention:apply_retention" in TASKS
    for settings, removes in (({"retention__enabled": "false"}, False), ({"retention__dry_run": "true"}, False),
                              ({}, True)):
        rx = make_receiver(database_url if not settings else None, **settings)
        with rx.gateway.read() as session:
            organisation = Organisation(name="Acme AB", country="SE")
            session.add(organisation)
            session.flush()
            organisation_id = organisation.id
        message_id = _message(rx.gateway, organisation_id, Direction.INBOUND, MessageState.ACKED, 100 * DAY)
        assert retention.apply_retention(rx.gateway) == (1 if removes else 0), settings
        with rx.gateway.read() as session:
            assert (session.get(Message, message_id).blob_key is None) == removes, settings
    # ran just now: not again before retention.interval_minutes
    _message(rx.gateway, organisation_id, Direction.INBOUND, MessageState.ACKED, 100 * DAY)
    assert retention.apply_retention(rx.gateway) == 0
    assert retention.run(rx.gateway, dry_run=False).total == 1


def test_the_apis_say_a_removed_payload_is_gone(world: World) -> None:
    retention.run(world.gateway, dry_run=False)
    auth = {"Authorization": f"Bearer {world.token}"}
    client = world.rx.client
    response = client.get(f"/api/v1/inbound/{world.ids['acked_old']}/document", headers=auth)
    assert response.status_code == 410 and "retention" in response.get_json()["detail"]
    assert client.get(f"/api/v1/inbound/{world.ids['acked_old']}", headers=auth).status_code == 200
    response = client.post(f"/api/v1/outbound/{world.ids['failed_old']}/retry", headers=auth)
    assert response.status_code == 409 and "retention" in response.get_json()["detail"]
    assert client.post(f"/api/v1/outbound/{world.ids['failed_recent']}/retry", headers=auth).status_code == 202


def test_metadata_must_outlive_payloads_and_the_duplicate_window(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as problems:
        load_config(None, {"PEPPOL_AP_RETENTION__METADATA_DAYS": "20", "PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path)})
    text = str(problems.value)
    assert "retention.metadata_days: must not be smaller than retention.duplicate_window_days" in text
    assert "retention.inbound_acked_payload_days" in text


def test_removal_happens_only_after_the_period(world: World) -> None:
    # an hour before the acked message's 90 days are up, nothing of it goes
    report = retention.run(world.gateway, dry_run=True, now=utcnow() - 10 * DAY - timedelta(hours=1))
    assert world.ids["acked_old"] not in {c.message_id for c in report.candidates}
    report = retention.run(world.gateway, dry_run=True, now=utcnow() - 10 * DAY + timedelta(hours=1))
    assert world.ids["acked_old"] in {c.message_id for c in report.candidates}


