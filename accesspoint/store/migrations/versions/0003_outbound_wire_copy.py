"""Outbound messages keep the exact HTTP body of their last unanswered try, so a resend is byte-identical.

A resend after a transport failure keeps the AS4 MessageId (shared/docs/as4.md pitfall 16). A receiver that did
store the first copy recognises a repeat only when the signed parts are the same (our receiver answers an identical
repeat with its stored receipt and a changed one with EBMS:4001), so the resend must be the same bytes, not a new
build with a new timestamp. Indexed because the orphaned-blob sweep looks blobs up by key (maintenance.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("wire_blob_key", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("wire_content_type", sa.String(length=512), nullable=True))
    op.create_index("ix_messages_wire_blob_key", "messages", ["wire_blob_key"])


def downgrade() -> None:
    op.drop_index("ix_messages_wire_blob_key", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("wire_content_type")
        batch.drop_column("wire_blob_key")
