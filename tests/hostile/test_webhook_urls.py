"""Hostile webhook URLs (issue 13, server-side request forgery): what an organisation token may register, where the
worker then connects, redirects, the subscription cap, and a delivery history that shows no answer bodies.

The gateways run in the test environment, where loopback is refused as in production (the local environment
permits it for its own test setups). The receivers are real HTTPS servers on 127.0.0.1; where one must be reached,
the operator's allow-list names 127.0.0.1/32, exactly as an operator delivering into their own network would.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from standardwebhooks import Webhook, WebhookVerificationError

from accesspoint.app import create_app
from accesspoint.flows.webhooks import deliver_due
from accesspoint.gateway import Gateway
from accesspoint.store.models import DeliveryState, WebhookDelivery, WebhookSubscription
from tests.hostile.egress_support import TlsReceiver, make_gateway, receiver_certificate  # noqa: F401 (fixture)
from tests.web.conftest import Org, dev_pki, inbound_store, make_org  # noqa: F401 (fixture)

# every form refused at registration, with (part of) the reason the problem document gives
REFUSED_AT_REGISTRATION = [
    ("http://hooks.example.com/in", "only https URLs are accepted"),
    ("https://169.254.169.254/latest/meta-data/iam/", "link-local (the cloud metadata service)"),
    ("https://[fd00:ec2::254]/", "private (unique local)"),
    ("https://10.0.0.5:8443/in", "private"),
    ("https://172.20.1.1/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://100.64.1.1/", "carrier-grade NAT"),
    ("https://127.0.0.1:8080/admin/api/organisations", "loopback"),
    ("https://[::1]:8080/admin/api", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "IPv4 127.0.0.1 embedded in IPv6"),
    ("https://[64:ff9b::a9fe:a9fe]/", "cloud metadata service"),
    ("https://0.0.0.0:8080/", "unspecified"),
    ("https://[::]:8080/", "unspecified"),
    ("https://2130706433/", "non-standard spelling of the IP address 127.0.0.1"),
    ("https://0x7f000001/", "non-standard spelling of the IP address 127.0.0.1"),
    ("https://0177.0.0.1/", "non-standard spelling of the IP address 127.0.0.1"),
    ("https://127.1/", "non-standard spelling of the IP address 127.0.0.1"),
    ("https://0/", "non-standard spelling of the IP address 0.0.0.0"),
    ("https://224.0.0.251/", "multicast"),
    ("https://localhost:8080/", "loopback name"),
    ("https://erp.example@127.0.0.1/", "user information"),
    ("https://user:password@erp.example/", "user information"),
    ("https://erp.example/in\r\nX-Injected: yes", "control character or whitespace"),
    ("https://erp.example/\x00", "control character or whitespace"),
    ("https://erp.example/a b", "control character or whitespace"),
]


@pytest.fixture
def gateway(tmp_path: Path, dev_pki: Path, database_url: str) -> Iterator[Gateway]:  # noqa: F811
    """Test environment; the operator allows 127.0.0.1 (and nothing else internal) for the receivers here."""
    gw = make_gateway(tmp_path / "data", dev_pki, database_url, egress__allow="127.0.0.1/32")
    yield gw
    gw.engine.dispose()


def subscriptions(gateway: Gateway) -> list[WebhookSubscription]:
    with gateway.sessions() as session:
        return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def deliveries(gateway: Gateway) -> dict[int, WebhookDelivery]:
    with gateway.sessions() as session:
        return {d.subscription_id: d for d in session.scalars(select(WebhookDelivery))}


def insert_subscription(gateway: Gateway, org: Org, url: str, secret: str) -> int:
    """A subscription the API would refuse today: stored before the upgrade, or a name whose DNS changed since."""
    with gateway.read() as session:
        subscription = WebhookSubscription(organisation_id=org.id, url=url, secret=secret, events=[], active=True)
        session.add(subscription)
        session.flush()
        return subscription.id


def due() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


def test_every_internal_or_malformed_url_is_refused_at_registration(tmp_path: Path, dev_pki: Path,  # noqa: F811
                                                                   database_url: str) -> None:
    strict = make_gateway(tmp_path / "strict", dev_pki, database_url)  # no allow-list: the test environment's default
    try:
        client = create_app(gateway=strict).test_client()
        acme = make_org(strict, "Acme AB")
        for url, reason in REFUSED_AT_REGISTRATION:
            response = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": url})
            assert response.status_code == 422, url
            assert response.mimetype == "application/problem+json"
            problem = response.get_json()
            assert problem["parameter"] == "url" and reason in problem["detail"], (url, problem["detail"])
        assert subscriptions(strict) == []
        # a public https URL still registers
        created = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": "https://erp.example.com/hooks"})
        assert created.status_code == 201
        assert [s.url for s in subscriptions(strict)] == ["https://erp.example.com/hooks"]
    finally:
        strict.engine.dispose()


def test_the_allow_list_admits_the_chosen_internal_address_only(client: FlaskClient, acme: Org,
                                                               gateway: Gateway) -> None:
    assert client.post("/api/v1/webhooks", headers=acme.auth, json={"url": "https://127.0.0.1:9443/in"}).status_code \
        == 201
    for url in ("https://127.0.0.2:9443/in", "https://10.0.0.1/", "https://localhost:9443/in", "http://127.0.0.1/"):
        assert client.post("/api/v1/webhooks", headers=acme.auth, json={"url": url}).status_code == 422, url
    assert [s.url for s in subscriptions(gateway)] == ["https://127.0.0.1:9443/in"]


def test_the_local_environment_permits_loopback_and_http_but_not_private_ranges(
        tmp_path: Path, dev_pki: Path, database_url: str) -> None:  # noqa: F811
    local = make_gateway(tmp_path / "local", dev_pki, database_url, environment="local")
    try:
        client = create_app(gateway=local).test_client()
        org = make_org(local, "Local AB")
        for url in ("https://10.0.0.5/in", "https://169.254.169.254/", "https://2130706433/"):
            assert client.post("/api/v1/webhooks", headers=org.auth, json={"url": url}).status_code == 422, url
        assert subscriptions(local) == []
        for url in ("http://127.0.0.1:9000/in", "http://localhost:9000/in", "http://[::1]:9000/in"):
            assert client.post("/api/v1/webhooks", headers=org.auth, json={"url": url}).status_code == 201, url
    finally:
        local.engine.dispose()


def test_internal_targets_are_refused_when_delivering_and_allowed_ones_get_a_verifiable_delivery(
        gateway: Gateway, client: FlaskClient, acme: Org, vectors: Path,
        receiver_certificate: tuple[Path, Path]) -> None:  # noqa: F811
    def verify(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            return 401, {}, b"bad signature"
        return 204, {}, b""

    receiver = TlsReceiver(receiver_certificate, verify)
    try:
        created = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": receiver.url})
        assert created.status_code == 201
        secret = created.get_json()["secret"]
        good = created.get_json()["id"]
        refused = {
            insert_subscription(gateway, acme, f"https://localhost:{receiver.port}/hooks", secret): "loopback name",
            insert_subscription(gateway, acme, f"https://[::ffff:127.0.0.1]:{receiver.port}/", secret): "loopback",
            insert_subscription(gateway, acme, f"https://[::1]:{receiver.port}/hooks", secret): "loopback",
            insert_subscription(gateway, acme, f"https://2130706433:{receiver.port}/", secret): "non-standard",
            insert_subscription(gateway, acme, f"http://127.0.0.1:{receiver.port}/", secret): "only https",
        }
        stored = inbound_store(gateway, vectors)(acme)
        assert deliver_due(gateway, clock=due) == len(refused) + 1
    finally:
        receiver.close()
    # only the allowed subscription reached the receiver, which verified it with the standardwebhooks library
    assert [event["id"] for event in receiver.events()] == [stored.event_id]
    by_subscription = deliveries(gateway)
    delivered = by_subscription.pop(good)
    assert (delivered.state, delivered.last_status) == (DeliveryState.DELIVERED, 204)
    for subscription_id, delivery in by_subscription.items():
        # retried as any failed delivery (the name may point elsewhere later), with our reason and no status
        assert (delivery.state, delivery.last_status, delivery.attempts) == (DeliveryState.PENDING, None, 1)
        assert delivery.last_error and delivery.last_error.startswith("not delivered: ")
        assert refused[subscription_id] in delivery.last_error, delivery.last_error


def test_a_redirect_is_not_followed(gateway: Gateway, client: FlaskClient, acme: Org, vectors: Path,
                                    receiver_certificate: tuple[Path, Path]) -> None:  # noqa: F811
    second = TlsReceiver(receiver_certificate)
    first = TlsReceiver(receiver_certificate, lambda _h, _b: (302, {"Location": second.url}, b""))
    try:
        created = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": first.url}).get_json()
        inbound_store(gateway, vectors)(acme)
        assert deliver_due(gateway, clock=due) == 1
        assert len(first.requests) == 1 and second.requests == []
        history = client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=acme.auth).get_json()
        [item] = history["items"]
        assert (item["state"], item["last_status"]) == ("pending", 302)
        assert item["last_error"] == "HTTP 302 Found (a redirect; redirects are not followed)"
        # the subscriber fixes its endpoint: the next try is delivered there, and only there
        with gateway.read() as session:
            session.get(WebhookSubscription, created["id"]).url = second.url  # type: ignore[union-attr]
        assert deliver_due(gateway, clock=lambda: due() + timedelta(minutes=5)) == 1
        assert len(first.requests) == 1 and len(second.requests) == 1
    finally:
        first.close()
        second.close()


def test_the_delivery_history_keeps_status_and_timing_not_the_answer(
        gateway: Gateway, client: FlaskClient, acme: Org, vectors: Path,
        receiver_certificate: tuple[Path, Path]) -> None:  # noqa: F811
    leak = b"root:x:0:0:root:/root:/bin/bash internal-admin-token=s3cr3t"
    answers = iter([(500, {"X-Internal": "s3cr3t"}, leak), (200, {}, leak)])
    receiver = TlsReceiver(receiver_certificate, lambda _h, _b: next(answers))
    try:
        created = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": receiver.url}).get_json()
        inbound_store(gateway, vectors)(acme)
        assert deliver_due(gateway, clock=due) == 1
        page = client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=acme.auth)
        [item] = page.get_json()["items"]
        assert (item["state"], item["attempts"], item["last_status"]) == ("pending", 1, 500)
        assert item["last_error"] == "HTTP 500 Internal Server Error" and item["next_attempt_at"]
        assert b"s3cr3t" not in page.data and b"root:x" not in page.data
        assert "s3cr3t" not in (deliveries(gateway)[created["id"]].last_error or "")
        assert deliver_due(gateway, clock=lambda: due() + timedelta(minutes=5)) == 1
    finally:
        receiver.close()
    page = client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=acme.auth)
    [item] = page.get_json()["items"]
    assert (item["state"], item["last_status"], item["last_error"]) == ("delivered", 200, None)
    assert item["delivered_at"] and b"s3cr3t" not in page.data


def test_an_organisation_has_at_most_the_configured_number_of_subscriptions(
        tmp_path: Path, dev_pki: Path, database_url: str) -> None:  # noqa: F811
    capped = make_gateway(tmp_path / "capped", dev_pki, database_url, webhooks__max_subscriptions="2")
    try:
        client = create_app(gateway=capped).test_client()
        acme, globex = make_org(capped, "Acme AB"), make_org(capped, "Globex AS")
        ids = [client.post("/api/v1/webhooks", headers=acme.auth,
                           json={"url": f"https://erp.example/{n}"}).get_json()["id"] for n in range(2)]
        over = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": "https://erp.example/3"})
        assert over.status_code == 409 and over.mimetype == "application/problem+json"
        assert "the most allowed (2)" in over.get_json()["detail"]
        with capped.sessions() as session:
            assert session.scalar(select(func.count()).select_from(WebhookSubscription)) == 2
        # the cap is per organisation, and a freed place can be taken again
        assert client.post("/api/v1/webhooks", headers=globex.auth,
                           json={"url": "https://globex.example/"}).status_code == 201
        assert client.delete(f"/api/v1/webhooks/{ids[0]}", headers=acme.auth).status_code == 204
        assert client.post("/api/v1/webhooks", headers=acme.auth,
                           json={"url": "https://erp.example/3"}).status_code == 201
    finally:
        capped.engine.dispose()


def test_a_secret_given_by_the_subscriber_must_be_a_standard_webhooks_secret(client: FlaskClient,
                                                                             acme: Org) -> None:
    mine = "whsec_" + base64.b64encode(b"my own 32-byte key, from my vault").decode()
    created = client.post("/api/v1/webhooks", headers=acme.auth, json={"url": "https://erp.example/", "secret": mine})
    assert created.status_code == 201 and created.get_json()["secret"] == mine
    refused = client.post("/api/v1/webhooks", headers=acme.auth,
                          json={"url": "https://erp.example/", "secret": "just-a-password-1234"})
    assert refused.status_code == 422 and refused.get_json()["parameter"] == "secret"
