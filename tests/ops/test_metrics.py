"""GET /metrics: in-process AS4 counters and latency, database gauges, discovery and revocation statistics."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from itertools import count

from sqlalchemy import select

from accesspoint.app import create_app
from accesspoint.flows.webhooks import INBOUND_RECEIVED
from accesspoint.store.models import (
    Attempt,
    AttemptOutcome,
    Direction,
    Message,
    MessageState,
    WebhookSubscription,
)
from base.egress import EgressPolicy
from certs.devpki import issue_leaf, load_pki
from certs.fetch import http_fetcher
from certs.revocation import RevocationChecker
from tests.certs.revocation_server import RevocationServer, make_crl
from tests.ops.helpers import names, value
from tests.receiving.conftest import Receiver, ReceiverFactory

_serials = count(700)

# the revocation servers of these tests run on loopback, as in the local environment
http_fetch = http_fetcher(EgressPolicy(loopback=True, plain_http=True))


def scrape(rx: Receiver) -> str:
    response = rx.client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def test_scrape_after_receiving_shows_counters_and_database_gauges(make_receiver: ReceiverFactory,
                                                                   sbd: bytes) -> None:
    rx = make_receiver()
    organisation_id = rx.seed()
    with rx.gateway.read() as session:
        session.add(WebhookSubscription(organisation_id=organisation_id, url="http://127.0.0.1:9/hook", secret="s",
                                        events=[INBOUND_RECEIVED]))
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
        assert rx.post(body, message.content_type).status_code == 200
        assert rx.post(body, message.content_type).status_code == 200  # the sender lost our receipt: a repeat
    assert rx.post(b"not mime", "text/plain").status_code == 400

    text = scrape(rx)
    assert value(text, "peppol_ap_as4_requests_total", outcome="accepted", error_code="") == 1
    assert value(text, "peppol_ap_as4_requests_total", outcome="repeated", error_code="") == 1
    assert value(text, "peppol_ap_as4_requests_total", outcome="refused", error_code="EBMS:0007") == 1
    assert value(text, "peppol_ap_as4_request_seconds_count") == 3
    [stored] = rx.messages()
    assert value(text, "peppol_ap_messages", direction="inbound", state=stored.state) == 1
    assert value(text, "peppol_ap_webhook_deliveries", state="pending") == 1
    assert value(text, "peppol_ap_database_up") == 1


def test_outbound_attempt_outcomes_are_counted(rx: Receiver) -> None:
    with rx.gateway.read() as session:
        message = Message(direction=Direction.OUTBOUND, state=MessageState.RETRYING, attempts=3)
        message.attempt_log = [
            Attempt(number=1, outcome=AttemptOutcome.TRANSIENT),
            Attempt(number=2, outcome=AttemptOutcome.TRANSIENT),
            Attempt(number=3),  # still running
        ]
        session.add(message)
    text = scrape(rx)
    assert value(text, "peppol_ap_outbound_attempts", outcome="transient") == 2
    assert value(text, "peppol_ap_outbound_attempts", outcome="in_progress") == 1
    assert value(text, "peppol_ap_messages", direction="outbound", state="retrying") == 1


def test_scrape_does_not_build_discovery_but_reports_a_built_one(rx: Receiver) -> None:
    text = scrape(rx)
    assert rx.gateway._discovery is None
    assert not any(name.startswith("peppol_ap_discovery") for name in names(text))
    rx.gateway.discovery.cache.get("some-key", lambda: "answer")
    rx.gateway.discovery.cache.get("some-key", lambda: "answer")
    text = scrape(rx)
    assert value(text, "peppol_ap_discovery_cache_size") == 1
    assert value(text, "peppol_ap_discovery_cache_events_total", event="misses") == 1
    assert value(text, "peppol_ap_discovery_cache_events_total", event="hits") == 1


def test_revocation_soft_fail_counter_appears(rx: Receiver) -> None:
    # The local environment checks no revocation; give this gateway a soft-failing checker as test/production has.
    pki = load_pki(rx.keys.pki_dir)
    checker = RevocationChecker(http_fetch, soft_fail=True, grace_seconds=24 * 3600)
    rx.gateway.validator.revocation = checker
    assert value(scrape(rx), "peppol_ap_revocation_soft_fail_used_total") == 0
    ca, ca_key = pki.ca("ap")
    with RevocationServer() as server:
        server.crls["ap"] = make_crl(ca, ca_key, next_update=datetime.now(UTC) + timedelta(hours=2))
        n = next(_serials)
        leaf = issue_leaf(pki, cn=f"POP{n:06d}", crl_url=server.crl_url("ap"), out_dir=rx.gateway.config.data_dir,
                          name=f"leaf-{n}")
        assert checker.check(leaf.certificate, ca).status == "good"
        del server.crls["ap"]  # the CRL server loses its CRL (404)
        later = datetime.now(UTC) + timedelta(hours=7)  # past the result cache and the CRL's nextUpdate
        assert checker.check(leaf.certificate, ca, at=later).source == "stale-cache"
    text = scrape(rx)
    assert value(text, "peppol_ap_revocation_soft_fail_used_total") == 1
    assert value(text, "peppol_ap_revocation_events_total", event="soft_fail_used") == 1
    assert value(text, "peppol_ap_revocation_events_total", event="checks") == 2


def test_database_down_still_answers(rx: Receiver) -> None:
    database = rx.gateway.config.data_dir / "gateway.db"
    rx.gateway.engine.dispose()
    shutil.move(database, database.with_suffix(".moved"))  # a fresh empty file has no tables: queries fail
    text = scrape(rx)
    assert value(text, "peppol_ap_database_up") == 0
    assert "peppol_ap_messages" not in names(text)


def test_each_app_has_its_own_registry(rx: Receiver, sbd: bytes) -> None:
    other = create_app(gateway=rx.gateway).test_client()
    with rx.build(sbd) as message:
        assert rx.send(message).status_code == 200
    mine = scrape(rx)
    theirs = other.get("/metrics").get_data(as_text=True)
    assert value(mine, "peppol_ap_as4_requests_total", outcome="accepted", error_code="") == 1
    assert value(theirs, "peppol_ap_as4_requests_total", outcome="accepted", error_code="") is None
    # the database gauges are shared state, the same through either app
    with rx.gateway.read() as session:
        state = session.scalars(select(Message.state)).one()
    assert value(theirs, "peppol_ap_messages", direction="inbound", state=state) == 1
