"""`GET /admin/api/audit`: the audit log of admin actions (admin tokens, `support` scope or `admin`), newest
first by default.

Every admin action (organisations, participants, receiving, resync, migration, document types, tokens, our SMP in
the SML, imports, retries of failed messages) wrote one record in the transaction of its change (store/audit.py):
who (`actor`: the token's name or `cli:<os user>`, and `api_client_id`), what (`action`, `target_type`,
`target_id`), when (`created_at`) and JSON snapshots `before` / `after` (no secrets).

    GET /audit?action=&target=TYPE[:ID]&since=&until=&order=newest|oldest&limit=&cursor=
        -> {items: [...], next}     (the pagination of every list, accesspoint.web.listing)
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from accesspoint.store.models import AuditRecord
from accesspoint.web.apidoc import ADMIN
from accesspoint.web.auth import admin_guard
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.schemas.audit import AuditEntry, AuditPage, AuditQuery

blueprint = Blueprint("admin_audit", __name__, url_prefix="/admin/api")


# admin tokens, `support` included: reading the log changes nothing
blueprint.before_request(admin_guard())


@blueprint.get("/audit")
@ADMIN.operation("listAudit", tags=("audit",), query=AuditQuery, responses={200: AuditPage}, problems=(401, 403))
def list_audit(query: AuditQuery) -> ResponseReturnValue:
    """The audit log of admin actions, newest first

    `target` is `TYPE` or `TYPE:ID` (e.g. `participant:12`); `since` and `until` bound the time.
    """
    rows = select(AuditRecord)
    if query.action:
        rows = rows.where(AuditRecord.action == query.action)
    if query.target:
        target_type, _, target_id = query.target.partition(":")
        rows = rows.where(AuditRecord.target_type == target_type)
        if target_id:
            rows = rows.where(AuditRecord.target_id == target_id)
    if query.since is not None:
        rows = rows.where(AuditRecord.created_at >= query.since)
    if query.until is not None:
        rows = rows.where(AuditRecord.created_at < query.until)
    with gateway().read() as session:
        entries, next_page = fetch_page(session, rows, query, created=AuditRecord.created_at, key=AuditRecord.id,
                                        newest_first=query.order == "newest", key_type=int)
        items = [AuditEntry.model_validate(entry, from_attributes=True) for entry in entries]
    return AuditPage(items=items, next=next_page), 200, link_header(next_page)
