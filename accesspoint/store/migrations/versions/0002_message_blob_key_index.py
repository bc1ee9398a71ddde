"""Index messages.blob_key: the orphaned blob sweep looks up every old blob by key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_blob_key", "messages", ["blob_key"])


def downgrade() -> None:
    op.drop_index("ix_messages_blob_key", table_name="messages")
