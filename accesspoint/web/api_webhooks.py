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

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accesspoint.flows.webhooks import (
    EVENT_TYPE_PATTERN,
    INBOUND_ACKED,
    INBOUND_RECEIVED,
    MAX_KEY_BYTES,
    MIN_KEY_BYTES,
    new_secret,
    secret_key,
)
from accesspoint.store.models import DeliveryState, Event, Organisation, WebhookDelivery, WebhookSubscription
from accesspoint.store.scopes import Scope
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import (
    CURSOR_PARAMETER,
    LIMIT_PARAMETER,
    NULLABLE_STRING,
    NULLABLE_TIMESTAMP,
    TIMESTAMP,
    after,
    bad_request,
    cursor_parameter,
    encode_cursor,
    json_content,
    limit_parameter,
    page_schema,
    problem_responses,
    ref,
)
from accesspoint.web.problems import ProblemError
from base.egress import EgressRefused

blueprint = Blueprint("api_webhooks", __name__, url_prefix="/api/v1/webhooks")

MAX_URL_LENGTH = 2048
# whsec_ and the base64 of the largest key Standard Webhooks allows
MAX_SECRET_LENGTH = 6 + 4 * ((MAX_KEY_BYTES + 2) // 3)
MAX_EVENT_TYPES = 50
# ids are 32-bit integer columns: a larger number cannot exist, and PostgreSQL would reject it as a parameter
MAX_ID = 2**31 - 1


def _subscription_document(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": list(subscription.events or []),
        "active": subscription.active,
        "created_at": subscription.created_at.isoformat(),
        "links": {"deliveries": url_for("api_webhooks.deliveries", subscription_id=subscription.id)},
    }


def _own_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    subscription = None
    if subscription_id <= MAX_ID:
        subscription = session.scalar(select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.organisation_id == current_client().organisation_id))
    if subscription is None:
        raise ProblemError(404, "Not Found", f"no webhook subscription {subscription_id} for this organisation")
    return subscription


@blueprint.get("")
@require_client(Scope.WEBHOOKS)
def list_subscriptions() -> ResponseReturnValue:
    with gateway().read() as session:
        subscriptions = session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.organisation_id == current_client().organisation_id)
            .order_by(WebhookSubscription.id))
        return jsonify(items=[_subscription_document(s) for s in subscriptions])


def _url(body: dict[str, Any]) -> str:
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise bad_request("url is required: the http(s) address the events are POSTed to", "url")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = None
    if len(url) > MAX_URL_LENGTH or parts is None or not port_ok or parts.scheme not in ("http", "https") \
            or not parts.hostname:
        raise bad_request(f"url must be an absolute http or https URL of at most {MAX_URL_LENGTH} characters, "
                          f"not {url[:100]!r}", "url")
    try:
        gateway().egress.check_url(url)
    except EgressRefused as exc:
        raise ProblemError(422, "Unprocessable Content", f"events are not delivered to this url: {exc.reason}",
                           parameter="url") from None
    return url


def _events(body: dict[str, Any]) -> list[str]:
    events = body.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_EVENT_TYPES or not all(
            isinstance(e, str) and EVENT_TYPE_PATTERN.fullmatch(e) for e in events):
        raise bad_request(f"events must be a list of at most {MAX_EVENT_TYPES} event types such as "
                          f"{INBOUND_RECEIVED!r}; leave it out or empty for every event type", "events")
    return sorted(set(events))


def _secret(body: dict[str, Any]) -> str:
    secret = body.get("secret")
    if secret is None:
        return new_secret()
    try:
        if not isinstance(secret, str) or len(secret) > MAX_SECRET_LENGTH:
            raise ValueError(f"at most {MAX_SECRET_LENGTH} characters")
        size = len(secret_key(secret))
        if not MIN_KEY_BYTES <= size <= MAX_KEY_BYTES:
            raise ValueError(f"the key is {size} bytes")
    except ValueError as exc:
        raise bad_request(f"secret must be whsec_ followed by the base64 of a {MIN_KEY_BYTES} to {MAX_KEY_BYTES} "
                          f"byte key, as Standard Webhooks has it ({exc}); leave it out to have one generated",
                          "secret") from None
    return secret


@blueprint.post("")
@require_client(Scope.WEBHOOKS)
def create_subscription() -> ResponseReturnValue:
    if not request.is_json:
        raise ProblemError(415, "Unsupported Media Type", "send the subscription as Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object with url, and optionally events and secret", "body")
    url, events, secret = _url(body), _events(body), _secret(body)
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
        subscription = WebhookSubscription(organisation_id=current_client().organisation_id, url=url,
                                           secret=secret, events=events, active=True)
        session.add(subscription)
        session.flush()
        document = _subscription_document(subscription)
    document["secret"] = secret
    response = jsonify(document)
    response.status_code = 201
    response.headers["Location"] = url_for("api_webhooks.get_subscription", subscription_id=document["id"])
    return response


@blueprint.get("/<int:subscription_id>")
@require_client(Scope.WEBHOOKS)
def get_subscription(subscription_id: int) -> ResponseReturnValue:
    with gateway().read() as session:
        return jsonify(_subscription_document(_own_subscription(session, subscription_id)))


@blueprint.delete("/<int:subscription_id>")
@require_client(Scope.WEBHOOKS)
def delete_subscription(subscription_id: int) -> ResponseReturnValue:
    """Stop and remove the subscription with its pending deliveries and history."""
    with gateway().read() as session:
        session.delete(_own_subscription(session, subscription_id))
    return "", 204


def _delivery_document(delivery: WebhookDelivery, event_type: str) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": event_type,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": (delivery.next_attempt_at.isoformat()
                            if delivery.next_attempt_at and delivery.state == DeliveryState.PENDING else None),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        "created_at": delivery.created_at.isoformat(),
    }


@blueprint.get("/<int:subscription_id>/deliveries")
@require_client(Scope.WEBHOOKS)
def deliveries(subscription_id: int) -> ResponseReturnValue:
    """The subscription's deliveries, newest first: what was sent, how often, and the last answer."""
    state = request.args.get("state")
    if state is not None and state not in tuple(DeliveryState):
        raise bad_request(f"state must be one of {', '.join(DeliveryState)}, not {state!r}", "state")
    limit = limit_parameter()
    position = cursor_parameter("newest", int)
    with gateway().read() as session:
        _own_subscription(session, subscription_id)
        query = (select(WebhookDelivery, Event.type)
                 .join(Event, Event.id == WebhookDelivery.event_id)
                 .where(WebhookDelivery.subscription_id == subscription_id))
        if state is not None:
            query = query.where(WebhookDelivery.state == state)
        if position is not None:
            query = query.where(after(WebhookDelivery.created_at, WebhookDelivery.id, position, True))
        rows = list(session.execute(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
                                    .limit(limit + 1)))
    page = rows[:limit]
    items = [_delivery_document(delivery, event_type) for delivery, event_type in page]
    next_cursor = encode_cursor(page[-1][0].created_at, page[-1][0].id, "newest") if len(rows) > limit else None
    return jsonify(items=items, next_cursor=next_cursor)


# --- OpenAPI ----------------------------------------------------------------------------------------

_ID_PARAMETER = {"name": "subscription_id", "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
_TAG = ["webhooks"]
_SIGNATURE_TEXT = (
    "Each event is POSTed as JSON `{id, type, created_at, message_id, data}` signed by the Standard Webhooks "
    "convention (https://www.standardwebhooks.com/): headers `webhook-id` (the event id), `webhook-timestamp` (unix "
    "seconds) and `webhook-signature: v1,<base64 HMAC-SHA256(key, \"<webhook-id>.<webhook-timestamp>.<raw body>\")>`, "
    "where the key is the base64-decoded part of the `whsec_` secret; `Peppol-AP-Event-Type` names the event type. "
    "The standardwebhooks libraries verify it; refuse a timestamp more than 5 minutes old. A 2xx answer marks the "
    "delivery delivered; anything else is retried with exponential backoff (30 s doubling to 1 h, with jitter) for "
    "up to 24 hours. Delivery is at least once: drop repeats by the event id. The url must be https (plain http "
    "only in the local environment) and lead to a public address; redirects are not followed."
)

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/webhooks": {
        "get": {
            "operationId": "listWebhooks",
            "tags": _TAG,
            "summary": "The organisation's webhook subscriptions",
            "responses": {"200": {"description": "all subscriptions",
                                  "content": json_content({"type": "object", "required": ["items"],
                                                           "properties": {"items": {"type": "array",
                                                                                    "items": ref("Webhook")}}})},
                          **problem_responses(401, 403)},
        },
        "post": {
            "operationId": "createWebhook",
            "tags": _TAG,
            "summary": "Subscribe a URL to events",
            "description": _SIGNATURE_TEXT + " The secret is in this answer only.",
            "requestBody": {"required": True, "content": json_content(ref("WebhookRequest"))},
            "responses": {"201": {"description": "the subscription with its secret",
                                  "headers": {"Location": {"schema": {"type": "string"}}},
                                  "content": json_content(ref("WebhookCreated"))},
                          **problem_responses(400, 401, 403, 409, 415, 422)},
        },
    },
    "/api/v1/webhooks/{subscription_id}": {
        "get": {
            "operationId": "getWebhook",
            "tags": _TAG,
            "summary": "One subscription (without its secret)",
            "parameters": [_ID_PARAMETER],
            "responses": {"200": {"description": "the subscription", "content": json_content(ref("Webhook"))},
                          **problem_responses(401, 403, 404)},
        },
        "delete": {
            "operationId": "deleteWebhook",
            "tags": _TAG,
            "summary": "Unsubscribe: pending deliveries stop and the history goes with the subscription",
            "parameters": [_ID_PARAMETER],
            "responses": {"204": {"description": "deleted"}, **problem_responses(401, 403, 404)},
        },
    },
    "/api/v1/webhooks/{subscription_id}/deliveries": {
        "get": {
            "operationId": "listWebhookDeliveries",
            "tags": _TAG,
            "summary": "Delivery history of a subscription, newest first",
            "parameters": [_ID_PARAMETER,
                           {"name": "state", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": [str(s) for s in DeliveryState]}},
                           LIMIT_PARAMETER, CURSOR_PARAMETER],
            "responses": {"200": {"description": "a page of deliveries",
                                  "content": json_content(ref("WebhookDeliveryPage"))},
                          **problem_responses(400, 401, 403, 404)},
        },
    },
}

_EVENT_TYPES_SCHEMA = {
    "type": "array", "maxItems": MAX_EVENT_TYPES,
    "items": {"type": "string", "pattern": f"^{EVENT_TYPE_PATTERN.pattern}$"},
    "description": f"event types such as {INBOUND_RECEIVED} and {INBOUND_ACKED}; empty means every type",
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "WebhookRequest": {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH,
                    "pattern": "^https?://[^\\s/?#:@]+(:[0-9]{1,5})?(/[^\\s]*)?$"},
            "events": _EVENT_TYPES_SCHEMA,
            "secret": {"type": "string", "maxLength": MAX_SECRET_LENGTH,
                       "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$",
                       "description": f"whsec_ and the base64 of a {MIN_KEY_BYTES} to {MAX_KEY_BYTES} byte HMAC key; "
                                      "generated when left out"},
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "active", "created_at", "links"],
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": _EVENT_TYPES_SCHEMA,
            "active": {"type": "boolean"},
            "created_at": TIMESTAMP,
            "links": {"type": "object", "required": ["deliveries"],
                      "properties": {"deliveries": {"type": "string"}}},
        },
    },
    "WebhookCreated": {
        "allOf": [ref("Webhook"), {"type": "object", "required": ["secret"],
                                   "properties": {"secret": {"type": "string"}}}],
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["id", "event_id", "event_type", "state", "attempts", "next_attempt_at", "last_status",
                     "last_error", "delivered_at", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": "string"},
            "event_type": {"type": "string"},
            "state": {"type": "string", "enum": [str(s) for s in DeliveryState]},
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt_at": {**NULLABLE_TIMESTAMP, "description": "when the next try is due (pending only)"},
            "last_status": {"type": ["integer", "null"], "description": "HTTP status of the last try"},
            "last_error": {**NULLABLE_STRING, "description": "why the last try failed"},
            "delivered_at": NULLABLE_TIMESTAMP,
            "created_at": TIMESTAMP,
        },
    },
    "WebhookDeliveryPage": page_schema("WebhookDelivery"),
}
