"""`GET /admin/api/audit`: the audit log of admin actions (admin tokens, `support` scope or `admin`), newest
first by default.

Every admin action (organisations, participants, receiving, resync, migration, document types, tokens, our SMP in
the SML, imports, retries of failed messages) wrote one record in the transaction of its change (store/audit.py):
who (`actor`: the token's name or `cli:<os user>`, and `api_client_id`), what (`action`, `target_type`,
`target_id`), when (`created_at`) and JSON snapshots `before` / `after` (no secrets).

    GET /audit?action=&target=TYPE[:ID]&since=&until=&order=newest|oldest&limit=&cursor=
        -> {items: [...], next_cursor}     (cursor pagination as every list, accesspoint.web.listing)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from accesspoint.store.models import AuditRecord
from accesspoint.web.auth import admin_guard
from accesspoint.web.context import gateway
from accesspoint.web.listing import (
    after,
    bad_request,
    cursor_parameter,
    encode_cursor,
    limit_parameter,
    parse_timestamp,
    since_parameter,
)

blueprint = Blueprint("admin_audit", __name__, url_prefix="/admin/api")

ORDERS = ("newest", "oldest")


# admin tokens, `support` included: reading the log changes nothing
blueprint.before_request(admin_guard())


def record_json(entry: AuditRecord) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor,
        "api_client_id": entry.api_client_id,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "before": entry.before,
        "after": entry.after,
    }


@blueprint.get("/audit")
def list_audit() -> ResponseReturnValue:
    order = request.args.get("order", "newest")
    if order not in ORDERS:
        raise bad_request(f"order must be one of {', '.join(ORDERS)}, not {order!r}", "order")
    newest_first = order == "newest"
    limit = limit_parameter()
    position = cursor_parameter(order, int)
    since = since_parameter()
    until_raw = request.args.get("until")
    until = None if until_raw is None else parse_timestamp(until_raw, "until")
    query = select(AuditRecord)
    action = request.args.get("action")
    if action:
        query = query.where(AuditRecord.action == action)
    target = request.args.get("target")
    if target:
        target_type, _, target_id = target.partition(":")
        query = query.where(AuditRecord.target_type == target_type)
        if target_id:
            query = query.where(AuditRecord.target_id == target_id)
    if since is not None:
        query = query.where(AuditRecord.created_at >= since)
    if until is not None:
        query = query.where(AuditRecord.created_at < until)
    if position is not None:
        query = query.where(after(AuditRecord.created_at, AuditRecord.id, position, newest_first))
    if newest_first:
        query = query.order_by(AuditRecord.created_at.desc(), AuditRecord.id.desc())
    else:
        query = query.order_by(AuditRecord.created_at, AuditRecord.id)
    with gateway().read() as session:
        entries = list(session.scalars(query.limit(limit + 1)))
        page = entries[:limit]
        items = [record_json(entry) for entry in page]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id, order) if len(entries) > limit else None
    return jsonify(items=items, next_cursor=next_cursor)
