"""Webhook subscriptions of the network API and their delivery history (see accesspoint.flows.webhooks for the wire
format, the signature and the retry policy).

The secret is generated (or taken from the request) on creation and shown in that answer only: it is stored
because every delivery is signed with it, but no endpoint returns it again. Subscribing starts with the next
event; earlier events are not replayed (poll `GET /api/v1/events` for those).

A URL the egress policy refuses by its form (plain http outside the local environment, user information, control
characters, an internal IP address in any spelling, `localhost`) is refused here with 422; a host name that
resolves to an internal address is refused at each delivery, when it is resolved. An organisation has at most
webhooks.max_subscriptions subscriptions (409 beyond).
"""

from __future__ import annotations

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accesspoint.flows.webhooks import new_secret
from accesspoint.store.models import DeliveryState, Event, Organisation, WebhookSubscription
from accesspoint.store.models import WebhookDelivery as WebhookDeliveryRow
from accesspoint.store.scopes import Scope
from accesspoint.web.apidoc import LOCATION_HEADER, NETWORK, int32_path_ids
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas.common import ListQuery
from accesspoint.web.schemas.webhooks import (
    DeliveryQuery,
    Webhook,
    WebhookCreated,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookLinks,
    WebhookPage,
    WebhookRequest,
)
from base.egress import EgressRefused

blueprint = Blueprint("api_webhooks", __name__, url_prefix="/api/v1/webhooks")
blueprint.before_request(int32_path_ids)

TAGS = ("webhooks",)
_SIGNATURE_TEXT = (
    "Each event is POSTed as JSON `{id, type, created_at, message_id, data}` signed by the Standard Webhooks "
    "convention (https://www.standardwebhooks.com/): headers `webhook-id` (the event id), `webhook-timestamp` (unix "
    "seconds) and `webhook-signature: v1,<base64 HMAC-SHA256(key, \"<webhook-id>.<webhook-timestamp>.<raw body>\")>`, "
    "where the key is the base64-decoded part of the `whsec_` secret; `Peppol-AP-Event-Type` names the event type. "
    "The standardwebhooks libraries verify it; refuse a timestamp more than 5 minutes old. A 2xx answer marks the "
    "delivery delivered; anything else is retried with exponential backoff (30 s doubling to 1 h, with jitter) for "
    "up to 24 hours. Delivery is at least once: drop repeats by the event id. The url must be https (plain http "
    "only in the local environment) and lead to a public address; redirects are not followed. The secret is in "
    "this answer only."
)


def _subscription_document(subscription: WebhookSubscription) -> Webhook:
    return Webhook(id=subscription.id, url=subscription.url, events=list(subscription.events or []),
                   active=subscription.active, created_at=subscription.created_at,
                   links=WebhookLinks(deliveries=url_for("api_webhooks.deliveries", subscription_id=subscription.id)))


def _own_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    subscription = session.scalar(select(WebhookSubscription).where(
        WebhookSubscription.id == subscription_id,
        WebhookSubscription.organisation_id == current_client().organisation_id))
    if subscription is None:
        raise ProblemError(404, "Not Found", f"no webhook subscription {subscription_id} for this organisation")
    return subscription


@blueprint.get("")
@require_client(Scope.WEBHOOKS)
@NETWORK.operation("listWebhooks", tags=TAGS, query=ListQuery, responses={200: WebhookPage}, problems=(401, 403))
def list_subscriptions(query: ListQuery) -> ResponseReturnValue:
    """The organisation's webhook subscriptions, oldest first"""
    rows = select(WebhookSubscription).where(
        WebhookSubscription.organisation_id == current_client().organisation_id)
    with gateway().read() as session:
        subscriptions, next_page = fetch_page(session, rows, query, created=WebhookSubscription.created_at,
                                              key=WebhookSubscription.id, newest_first=False, key_type=int)
        items = [_subscription_document(s) for s in subscriptions]
    return WebhookPage(items=items, next=next_page), 200, link_header(next_page)


@blueprint.post("")
@require_client(Scope.WEBHOOKS)
@NETWORK.operation("createWebhook", tags=TAGS, json=WebhookRequest, responses={201: WebhookCreated},
                   problems=(401, 403, 409), extra={"description": _SIGNATURE_TEXT,
                                                    "responses": {"201": {"headers": LOCATION_HEADER}}})
def create_subscription(json: WebhookRequest) -> ResponseReturnValue:
    """Subscribe a URL to events"""
    try:
        gateway().egress.check_url(json.url)
    except EgressRefused as exc:
        raise ProblemError(422, "Unprocessable Content", f"events are not delivered to this url: {exc.reason}",
                           parameter="url") from None
    secret = json.secret or new_secret()
    cap = gateway().config.webhooks.max_subscriptions
    organisation_id = current_client().organisation_id
    with gateway().write() as session:
        # the organisation's row is locked (PostgreSQL; SQLite's write transaction locks the file) so that two
        # concurrent requests cannot both pass the count
        session.execute(select(Organisation.id).where(Organisation.id == organisation_id).with_for_update())
        count = session.scalar(select(func.count()).select_from(WebhookSubscription)
                               .where(WebhookSubscription.organisation_id == organisation_id))
        if (count or 0) >= cap:
            raise ProblemError(409, "Conflict", f"this organisation already has {count} webhook subscriptions, the "
                               f"most allowed ({cap}); delete one first")
        subscription = WebhookSubscription(organisation_id=organisation_id, url=json.url, secret=secret,
                                           events=json.events, active=True)
        session.add(subscription)
        session.flush()
        created = WebhookCreated(**_subscription_document(subscription).model_dump(), secret=secret)
    location = url_for("api_webhooks.get_subscription", subscription_id=created.id)
    return created, 201, {"Location": location}


@blueprint.get("/<int:subscription_id>")
@require_client(Scope.WEBHOOKS)
@NETWORK.operation("getWebhook", tags=TAGS, responses={200: Webhook}, problems=(401, 403, 404))
def get_subscription(subscription_id: int) -> ResponseReturnValue:
    """One subscription (without its secret)"""
    with gateway().read() as session:
        return _subscription_document(_own_subscription(session, subscription_id))


@blueprint.delete("/<int:subscription_id>")
@require_client(Scope.WEBHOOKS)
@NETWORK.operation("deleteWebhook", tags=TAGS, responses={204: None}, problems=(401, 403, 404),
                   extra={"responses": {"204": {"description": "deleted"}}})
def delete_subscription(subscription_id: int) -> ResponseReturnValue:
    """Unsubscribe: pending deliveries stop and the history goes with the subscription"""
    with gateway().read() as session:
        session.delete(_own_subscription(session, subscription_id))
    return "", 204


def _delivery_document(delivery: WebhookDeliveryRow, event_type: str) -> WebhookDelivery:
    return WebhookDelivery(
        id=delivery.id, event_id=delivery.event_id, event_type=event_type, state=delivery.state,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.state == DeliveryState.PENDING else None,
        last_status=delivery.last_status, last_error=delivery.last_error, delivered_at=delivery.delivered_at,
        created_at=delivery.created_at)


@blueprint.get("/<int:subscription_id>/deliveries")
@require_client(Scope.WEBHOOKS)
@NETWORK.operation("listWebhookDeliveries", tags=TAGS, query=DeliveryQuery, responses={200: WebhookDeliveryPage},
                   problems=(401, 403, 404))
def deliveries(subscription_id: int, query: DeliveryQuery) -> ResponseReturnValue:
    """Delivery history of a subscription, newest first: what was sent, how often, and the last answer"""
    with gateway().read() as session:
        _own_subscription(session, subscription_id)
        rows = (select(WebhookDeliveryRow, Event.type)
                .join(Event, Event.id == WebhookDeliveryRow.event_id)
                .where(WebhookDeliveryRow.subscription_id == subscription_id))
        if query.state is not None:
            rows = rows.where(WebhookDeliveryRow.state == query.state)
        page, next_page = fetch_page(session, rows, query, created=WebhookDeliveryRow.created_at,
                                     key=WebhookDeliveryRow.id, newest_first=True, key_type=int,
                                     position_of=lambda row: row[0])
        items = [_delivery_document(delivery, event_type) for delivery, event_type in page]
    return WebhookDeliveryPage(items=items, next=next_page), 200, link_header(next_page)
