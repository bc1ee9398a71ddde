"""Webhook subscriptions and their delivery history (the wire format: accesspoint.flows.webhooks)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from accesspoint.flows.webhooks import MAX_KEY_BYTES, MIN_KEY_BYTES, secret_key
from accesspoint.store.models import DeliveryState
from accesspoint.web.schemas.common import ListQuery, Page, Schema, model_examples, page_examples
from accesspoint.web.schemas.events import EventType

MAX_URL_LENGTH = 2048
# whsec_ and the base64 of the largest key Standard Webhooks allows
MAX_SECRET_LENGTH = 6 + 4 * ((MAX_KEY_BYTES + 2) // 3)
MAX_EVENT_TYPES = 50
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (the documentation's example)
EVENTS_DESCRIPTION = "event types to deliver; empty (or left out) means every type"


class WebhookRequest(BaseModel):
    """A subscription: the URL events are POSTed to, which events, and optionally the signing secret"""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://erp.example.com/peppol/events", "events": ["inbound.received", "outbound.failed"]},
        {"url": "https://erp.example.com/peppol/events", "secret": SECRET_EXAMPLE},
    ]})

    url: str = Field(max_length=MAX_URL_LENGTH, description="absolute https URL (http only in the local "
                     "environment) of a public address", examples=["https://erp.example.com/peppol/events"])
    events: list[EventType] = Field(default_factory=list, max_length=MAX_EVENT_TYPES, description=EVENTS_DESCRIPTION)
    secret: str | None = Field(None, max_length=MAX_SECRET_LENGTH, pattern=r"^whsec_[A-Za-z0-9+/]+={0,2}$",
                               description=f"whsec_ and the base64 of a {MIN_KEY_BYTES} to {MAX_KEY_BYTES} byte HMAC "
                                           "key (Standard Webhooks); generated when left out")

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok, parts = False, None
        if parts is None or not port_ok or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an absolute http or https URL, not {url[:100]!r}")
        return url

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[str]) -> list[str]:
        return sorted(set(events))

    @field_validator("secret")
    @classmethod
    def _standard_webhooks_secret(cls, secret: str | None) -> str | None:
        if secret is not None:
            size = len(secret_key(secret))
            if not MIN_KEY_BYTES <= size <= MAX_KEY_BYTES:
                raise ValueError(f"the key is {size} bytes, Standard Webhooks wants {MIN_KEY_BYTES} to "
                                 f"{MAX_KEY_BYTES}; leave the secret out to have one generated")
        return secret


class WebhookLinks(Schema):
    deliveries: str


class Webhook(Schema):
    """A webhook subscription (without its secret)"""

    model_config = model_examples({
        "id": 1, "url": "https://erp.example.com/peppol/events", "events": ["inbound.received"], "active": True,
        "created_at": "2026-11-21T09:00:00Z", "links": {"deliveries": "/api/v1/webhooks/1/deliveries"},
    })

    id: int
    url: str
    events: list[EventType] = Field(description=EVENTS_DESCRIPTION)
    active: bool
    created_at: datetime
    links: WebhookLinks


class WebhookCreated(Webhook):
    """The new subscription with its secret (shown in this answer only)"""

    model_config = model_examples({
        "id": 1, "url": "https://erp.example.com/peppol/events", "events": [], "active": True,
        "created_at": "2026-11-21T09:00:00Z", "links": {"deliveries": "/api/v1/webhooks/1/deliveries"},
        "secret": SECRET_EXAMPLE,
    })

    secret: str


class WebhookPage(Page):
    model_config = page_examples(Webhook, "/api/v1/webhooks")

    items: list[Webhook]


class DeliveryQuery(ListQuery):
    state: DeliveryState | None = Field(None, description="only deliveries in this state")


class WebhookDelivery(Schema):
    """One event's delivery to a subscription: how often it was tried and the last answer"""

    model_config = model_examples({
        "id": 7, "event_id": "5b0c6f1e-3c9f-4c4e-9a44-3f1f6f1c2d11", "event_type": "inbound.received",
        "state": "pending", "attempts": 2, "next_attempt_at": "2026-11-21T09:02:00Z", "last_status": 503,
        "last_error": "HTTP 503", "delivered_at": None, "created_at": "2026-11-21T09:00:00Z",
    })

    id: int
    event_id: str
    event_type: EventType
    state: DeliveryState
    attempts: int = Field(ge=0)
    next_attempt_at: datetime | None = Field(description="when the next try is due (pending only)")
    last_status: int | None = Field(description="HTTP status of the last try")
    last_error: str | None = Field(description="why the last try failed")
    delivered_at: datetime | None
    created_at: datetime


class WebhookDeliveryPage(Page):
    model_config = page_examples(WebhookDelivery, "/api/v1/webhooks/1/deliveries")

    items: list[WebhookDelivery]
