"""`GET /admin/api/messages[/{id}]`: support finds a message of any organisation (admin tokens).

The same filters as the network API's lists (state, sender, receiver, document type, document ID, since/until),
plus `organisation` and `direction`; newest first, paged like every list.
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accesspoint.store.models import Message
from accesspoint.web.apidoc import ADMIN
from accesspoint.web.auth import admin_guard
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.messages import admin_message, filtered
from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas.messages import AdminMessage, AdminMessagePage, AdminMessageQuery

blueprint = Blueprint("admin_messages", __name__, url_prefix="/admin/api/messages")

TAGS = ("messages",)


# reading messages changes nothing: `support` may, as `admin` may
blueprint.before_request(admin_guard())


@blueprint.get("")
@ADMIN.operation("listMessages", tags=TAGS, query=AdminMessageQuery, responses={200: AdminMessagePage},
                 problems=(401, 403))
def list_messages(query: AdminMessageQuery) -> ResponseReturnValue:
    """Messages of any organisation, newest first

    `document_id` is the business document's own ID (the invoice number), the usual way a customer names it.
    """
    rows = filtered(select(Message).options(selectinload(Message.receipt)), query)
    if query.organisation is not None:
        rows = rows.where(Message.organisation_id == query.organisation)
    if query.direction is not None:
        rows = rows.where(Message.direction == query.direction)
    with gateway().read() as session:
        messages, next_page = fetch_page(session, rows, query, created=Message.created_at, key=Message.id,
                                         newest_first=query.order == "newest")
        items = [admin_message(message) for message in messages]
    return AdminMessagePage(items=items, next=next_page), 200, link_header(next_page)


@blueprint.get("/<message_id>")
@ADMIN.operation("getMessage", tags=TAGS, responses={200: AdminMessage}, problems=(401, 403, 404))
def get_message(message_id: str) -> ResponseReturnValue:
    """One message of any organisation"""
    with gateway().read() as session:
        message = session.get(Message, message_id, options=[selectinload(Message.receipt)])
        if message is None:
            raise ProblemError(404, "Not Found", f"no message {message_id!r}")
        return admin_message(message)
