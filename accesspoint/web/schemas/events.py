"""Events: what happened to an organisation's messages, polled from `GET /api/v1/events` or POSTed by webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from accesspoint.flows.webhooks import EVENT_TYPES
from accesspoint.web.schemas.common import Instant, ListQuery, Page, Schema, model_examples, page_examples

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class EventQuery(ListQuery):
    type: EventType | None = Field(None, description="only events of this type")
    since: Instant | None = Field(None, description="only events created at or after this instant")


class Event(Schema):
    """An event (the body of its webhook delivery)"""

    model_config = model_examples({
        "id": "5b0c6f1e-3c9f-4c4e-9a44-3f1f6f1c2d11", "type": "inbound.received",
        "created_at": "2026-11-21T09:00:00Z", "message_id": "0f6a1c1e-8b0d-4f0e-a3c4-0d3c9f0b1e22",
        "data": {"message_id": "0f6a1c1e-8b0d-4f0e-a3c4-0d3c9f0b1e22",
                 "sender": "iso6523-actorid-upis::0007:5567321707"},
    })

    id: str = Field(description="stable across webhook retries: drop repeats by it")
    type: EventType
    created_at: datetime
    message_id: str | None = Field(description="the message the event is about, if any")
    data: dict[str, Any]


class EventPage(Page):
    model_config = page_examples(Event, "/api/v1/events")

    items: list[Event]
