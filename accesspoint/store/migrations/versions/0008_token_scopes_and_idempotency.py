"""Token scopes and expiry, and the fingerprint of an idempotent submission.

`api_clients.scopes` is the JSON list of what a token may do (accesspoint.store.scopes); every token made before
gets the full set of its role, so nothing it could do before is taken away. `expires_at` (optional) ends a token;
`last_used_at` says when it was last seen. The scope lists are written out here, not imported: a migration must keep
meaning what it meant when it was written.

`messages.idempotency_fingerprint` is the sha256 of the submission an Idempotency-Key came with, so that the key
reused with another document is refused instead of answered with the first message. Messages submitted before have
none and are replayed as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FULL_SCOPES = {
    "network": ["outbound:read", "outbound:write", "inbound:read", "inbound:ack", "events:read", "webhooks"],
    "admin": ["admin"],
}
_clients = sa.table("api_clients", sa.column("role", sa.String), sa.column("scopes", sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("scopes", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    connection = op.get_bind()
    for role, scopes in FULL_SCOPES.items():
        connection.execute(_clients.update().where(_clients.c.role == role).values(scopes=scopes))
    with op.batch_alter_table("api_clients") as batch:
        batch.alter_column("scopes", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("idempotency_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("idempotency_fingerprint")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
