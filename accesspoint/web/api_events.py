"""`GET /api/v1/events`: the organisation's events for consumers that poll instead of taking webhooks.

Oldest first, paged by cursor. Events become visible when the transaction that created them commits, which is
not always in `created_at` order: a poller that resumes with `since` should go back a minute behind the last
event it saw and drop the repeats by id (the same rule as for webhook deliveries).
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from accesspoint.flows.webhooks import event_document
from accesspoint.store.models import Event as EventRow
from accesspoint.store.scopes import Scope
from accesspoint.web.apidoc import NETWORK
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.schemas.events import Event, EventPage, EventQuery

blueprint = Blueprint("api_events", __name__, url_prefix="/api/v1/events")


@blueprint.get("")
@require_client(Scope.EVENTS_READ)
@NETWORK.operation("listEvents", tags=("events",), query=EventQuery, responses={200: EventPage},
                   problems=(401, 403))
def list_events(query: EventQuery) -> ResponseReturnValue:
    """The organisation's events, oldest first (the same documents webhooks POST)

    Resume with the `next` URL, or with `since` set a minute before the last event seen, dropping repeats by id:
    events appear when their transaction commits.
    """
    rows = select(EventRow).where(EventRow.organisation_id == current_client().organisation_id)
    if query.type is not None:
        rows = rows.where(EventRow.type == query.type)
    if query.since is not None:
        rows = rows.where(EventRow.created_at >= query.since)
    with gateway().read() as session:
        events, next_page = fetch_page(session, rows, query, created=EventRow.created_at, key=EventRow.id,
                                       newest_first=False)
        items = [Event.model_validate(event_document(event)) for event in events]
    return EventPage(items=items, next=next_page), 200, link_header(next_page)
