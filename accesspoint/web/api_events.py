"""`GET /api/v1/events`: the organisation's events for consumers that poll instead of taking webhooks.

Oldest first, paged by cursor. Events become visible when the transaction that created them commits, which is
not always in `created_at` order: a poller that resumes with `since` should go back a minute behind the last
event it saw and drop the repeats by id (the same rule as for webhook deliveries).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from accesspoint.flows.webhooks import EVENT_TYPE_PATTERN, event_document
from accesspoint.store.models import Event
from accesspoint.store.scopes import Scope
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import (
    CURSOR_PARAMETER,
    LIMIT_PARAMETER,
    NULLABLE_STRING,
    SINCE_PARAMETER,
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
    since_parameter,
)

blueprint = Blueprint("api_events", __name__, url_prefix="/api/v1/events")


@blueprint.get("")
@require_client(Scope.EVENTS_READ)
def list_events() -> ResponseReturnValue:
    event_type = request.args.get("type")
    if event_type is not None and not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise bad_request(f"type must be an event type such as 'inbound.received', not {event_type!r}", "type")
    since = since_parameter()
    limit = limit_parameter()
    position = cursor_parameter("oldest", str)
    query = select(Event).where(Event.organisation_id == current_client().organisation_id)
    if event_type is not None:
        query = query.where(Event.type == event_type)
    if since is not None:
        query = query.where(Event.created_at >= since)
    if position is not None:
        query = query.where(after(Event.created_at, Event.id, position, False))
    with gateway().read() as session:
        events = list(session.scalars(query.order_by(Event.created_at, Event.id).limit(limit + 1)))
    page = events[:limit]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id, "oldest") if len(events) > limit else None
    return jsonify(items=[event_document(event) for event in page], next_cursor=next_cursor)


OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/events": {
        "get": {
            "operationId": "listEvents",
            "tags": ["events"],
            "summary": "The organisation's events, oldest first (the same documents webhooks POST)",
            "description": "Resume with `cursor`, or with `since` set a minute before the last event seen, "
                           "dropping repeats by id: events appear when their transaction commits.",
            "parameters": [
                {"name": "type", "in": "query", "required": False,
                 "schema": {"type": "string", "pattern": f"^{EVENT_TYPE_PATTERN.pattern}$"}},
                SINCE_PARAMETER, LIMIT_PARAMETER, CURSOR_PARAMETER,
            ],
            "responses": {"200": {"description": "a page of events", "content": json_content(ref("EventPage"))},
                          **problem_responses(400, 401, 403)},
        },
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Event": {
        "type": "object",
        "required": ["id", "type", "created_at", "message_id", "data"],
        "properties": {
            "id": {"type": "string", "description": "stable across webhook retries: drop repeats by it"},
            "type": {"type": "string", "examples": ["inbound.received", "inbound.acked"]},
            "created_at": TIMESTAMP,
            "message_id": {**NULLABLE_STRING, "description": "the message the event is about, if any"},
            "data": {"type": "object"},
        },
    },
    "EventPage": page_schema("Event"),
}
