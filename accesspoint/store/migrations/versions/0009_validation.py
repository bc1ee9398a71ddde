"""BIS validation: the report stored with each message, the inbound validation queue, and the per-organisation
choice between refusing a submission with fatal findings (the default) and sending it with a warning.

Plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+ drops columns itself): a batch "move and copy" of `organisations`
on SQLite would drop the table and, with foreign keys on, cascade-delete everything that refers to it.

Revision ID: 0009
Revises: 0006 (to be re-chained onto 0007 when merged after it)
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("validation", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("validation_due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_messages_validation_due_at", "messages", ["validation_due_at"])
    op.add_column("organisations", sa.Column("validation_mode", sa.String(length=8), nullable=False,
                                             server_default="refuse"))


def downgrade() -> None:
    op.drop_column("organisations", "validation_mode")
    op.drop_index("ix_messages_validation_due_at", table_name="messages")
    op.drop_column("messages", "validation_due_at")
    op.drop_column("messages", "validation")
