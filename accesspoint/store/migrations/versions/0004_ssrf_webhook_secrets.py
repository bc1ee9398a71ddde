"""Webhook secrets in the Standard Webhooks form, and a delivery history without the consumers' answers.

Deliveries are signed by the Standard Webhooks convention from now on: the secret is `whsec_<base64>` and the HMAC
key is the decoded part. Before, the HMAC key was the secret's own UTF-8 bytes (`Peppol-AP-Signature`). Every secret
stored so far is rewritten to `whsec_` + base64 of those bytes, so each subscription keeps its key: a subscriber
verifies with `standardwebhooks.Webhook(old_secret.encode())` (bytes are taken as the key) or with the rewritten
string, which it can compute itself (README: webhooks). The column grows to hold the rewritten form of the longest
secret the API accepted before (200 characters).

`last_error` used to end with the first bytes of the consumer's answer; an organisation could read what an internal
server said through it. Those excerpts are dropped: the status stays.

The downgrade turns the rewritten secrets back into the old text; a secret made after the upgrade (random key bytes,
no text) stays as it is and needs a new subscription under the old code. The excerpts cannot come back.

Revision ID: 0004_ssrf
Revises: 0003
Create Date: 2026-12-03
"""

import base64
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_ssrf"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "whsec_"
_subscriptions = sa.table("webhook_subscriptions", sa.column("id", sa.Integer), sa.column("secret", sa.String))
_deliveries = sa.table("webhook_deliveries", sa.column("last_status", sa.Integer), sa.column("last_error", sa.Text))


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.alter_column("secret", existing_type=sa.String(length=200), type_=sa.String(length=300),
                           existing_nullable=False)
    connection = op.get_bind()
    for row in connection.execute(sa.select(_subscriptions.c.id, _subscriptions.c.secret)).all():
        rewritten = PREFIX + base64.b64encode(row.secret.encode("utf-8")).decode("ascii")
        connection.execute(_subscriptions.update().where(_subscriptions.c.id == row.id).values(secret=rewritten))
    connection.execute(_deliveries.update().where(_deliveries.c.last_status.is_not(None))
                       .values(last_error=sa.literal("HTTP ") + sa.cast(_deliveries.c.last_status, sa.String)))


def downgrade() -> None:
    connection = op.get_bind()
    for row in connection.execute(sa.select(_subscriptions.c.id, _subscriptions.c.secret)).all():
        try:
            original = base64.b64decode(row.secret[len(PREFIX):]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        connection.execute(_subscriptions.update().where(_subscriptions.c.id == row.id).values(secret=original))
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.alter_column("secret", existing_type=sa.String(length=300), type_=sa.String(length=200),
                           existing_nullable=False)
