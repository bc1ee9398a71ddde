"""messages.document_id: the business document's own ID (the invoice or credit note number, UBL cbc:ID), captured
when a document is received or submitted, so that the APIs can find a message by it.

Messages stored before stay NULL: their documents are in the blob store (or already removed by retention), and
reading every one of them in a migration would make the upgrade as long as the archive is big.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("document_id", sa.String(200), nullable=True))
    op.create_index("ix_messages_organisation_id_direction_document_id", "messages",
                    ["organisation_id", "direction", "document_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_organisation_id_direction_document_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("document_id")
