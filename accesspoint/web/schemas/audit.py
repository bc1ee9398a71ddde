"""`GET /admin/api/audit`: the audit log of admin actions (accesspoint.store.audit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from accesspoint.web.schemas.common import Instant, ListQuery, Page, Schema, model_examples, page_examples
from accesspoint.web.schemas.messages import Order


class AuditQuery(ListQuery):
    action: str | None = Field(None, max_length=64, description="only this action", examples=["participant.create"])
    target: str | None = Field(None, max_length=100, description="`TYPE` or `TYPE:ID` of the target",
                               examples=["participant:12"])
    since: Instant | None = Field(None, description="only records at or after this instant")
    until: Instant | None = Field(None, description="only records before this instant")
    order: Order = Field("newest", description="`newest` (default) or `oldest` first")


class AuditEntry(Schema):
    """One admin action: who, what, when, and the target before and after (no secrets)"""

    model_config = model_examples({
        "id": 12, "created_at": "2026-11-21T09:00:00Z", "actor": "support-admin", "api_client_id": 3,
        "action": "participant.create", "target_type": "participant", "target_id": "12", "before": None,
        "after": {"identifier": "iso6523-actorid-upis::0007:5567321707", "receiving_enabled": False},
    })

    id: int
    created_at: datetime
    actor: str = Field(description="the token's name, or `cli:<os user>`")
    api_client_id: int | None
    action: str
    target_type: str
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(Page):
    model_config = page_examples(AuditEntry, "/admin/api/audit")

    items: list[AuditEntry]
