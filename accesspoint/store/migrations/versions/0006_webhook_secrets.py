"""Webhook secrets in the Standard Webhooks form, and a delivery history without the consumers' answers.

Deliveries are signed by the Standard Webhooks convention from now on: the secret is `whsec_<base64>` and the HMAC
key is the decoded part. Before, the HMAC key was the secret's own UTF-8 bytes (`Peppol-AP-Signature`). Every secret
stored so far is rewritten to `whsec_` + base64 of that key, so each subscription keeps its key and a subscriber
may go on verifying with the secret it has: `standardwebhooks.Webhook(old_secret.encode())` takes bytes as the key
(README: webhooks). A key longer than SHA-256's 64-byte block is stored as its SHA-256 digest: HMAC hashes such a
key before use (RFC 2104 section 2), so the signatures are the same, and the rewritten secret fits the column.

`last_error` used to end with the first bytes of the consumer's answer; an organisation could read what an internal
server said through it. Those excerpts are dropped: the status stays (`HTTP 500`).

The downgrade turns rewritten secrets back into their old text where the key is text (the hashed long keys and the
random keys of secrets made after the upgrade are not; those subscriptions need a new secret under the old code).
The excerpts cannot come back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import base64
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "whsec_"
HMAC_BLOCK = 64  # bytes, SHA-256
_subscriptions = sa.table("webhook_subscriptions", sa.column("id", sa.Integer), sa.column("secret", sa.String))
_deliveries = sa.table("webhook_deliveries", sa.column("last_status", sa.Integer), sa.column("last_error", sa.Text))


def upgrade() -> None:
    connection = op.get_bind()
    for row in connection.execute(sa.select(_subscriptions.c.id, _subscriptions.c.secret)).all():
        key = row.secret.encode("utf-8")
        if len(key) > HMAC_BLOCK:
            key = hashlib.sha256(key).digest()
        rewritten = PREFIX + base64.b64encode(key).decode("ascii")
        connection.execute(_subscriptions.update().where(_subscriptions.c.id == row.id).values(secret=rewritten))
    connection.execute(_deliveries.update().where(_deliveries.c.last_status.is_not(None),
                                                  _deliveries.c.last_error.is_not(None))
                       .values(last_error=sa.literal("HTTP ") + sa.cast(_deliveries.c.last_status, sa.String)))


def downgrade() -> None:
    connection = op.get_bind()
    for row in connection.execute(sa.select(_subscriptions.c.id, _subscriptions.c.secret)).all():
        try:
            original = base64.b64decode(row.secret[len(PREFIX):], validate=True).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError: not a key that was text
            continue
        if original.isprintable():
            connection.execute(_subscriptions.update().where(_subscriptions.c.id == row.id).values(secret=original))
