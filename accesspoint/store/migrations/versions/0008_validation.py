"""BIS validation: the report stored with each message, the inbound validation queue, and the per-organisation
choice between refusing a submission with fatal findings (the default) and sending it with a warning.

Revision ID: 0008
Revises: 0006 (to be re-chained onto 0007 when merged after it)
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("validation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("validation_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_messages_validation_due_at", ["validation_due_at"])
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("validation_mode", sa.String(length=8), nullable=False, server_default="refuse"))


def downgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("validation_mode")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_validation_due_at")
        batch.drop_column("validation_due_at")
        batch.drop_column("validation")
