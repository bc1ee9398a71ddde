"""Migration 0006 on SQLite and PostgreSQL: old webhook secrets become Standard Webhooks secrets with the same
HMAC key, and the answer excerpts in the delivery history are dropped."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from standardwebhooks import Webhook

from accesspoint.flows.webhooks import signature_headers
from accesspoint.store.database import alembic_config, make_engine, upgrade

OLD_GENERATED = "whsec_Yp3kq0-Xx_9aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"  # token_urlsafe(32), as made before
OLD_CHOSEN = "a secret of my own, chosen by the subscriber: " + "x" * 154  # the longest the API took (200)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _insert_old_rows(connection: sa.Connection) -> None:
    connection.execute(sa.text("INSERT INTO organisations (id, name, country, created_at, updated_at) "
                               "VALUES (1, 'Acme AB', 'SE', :now, :now)"), {"now": NOW})
    for n, secret in enumerate((OLD_GENERATED, OLD_CHOSEN), start=1):
        connection.execute(sa.text("INSERT INTO webhook_subscriptions (id, organisation_id, url, secret, events, "
                                   "active, created_at) VALUES (:id, 1, 'https://erp.example/', :secret, '[]', "
                                   ":active, :now)"), {"id": n, "secret": secret, "now": NOW, "active": True})
    for event in ("e1", "e2"):
        connection.execute(sa.text("INSERT INTO events (id, type, organisation_id, data, created_at) "
                                   "VALUES (:id, 'inbound.received', 1, '{}', :now)"), {"id": event, "now": NOW})
    for n, (status, error) in enumerate([(500, "HTTP 500 Internal Server Error: root:x:0:0 internal page"),
                                         (None, "ConnectionError: refused"), (200, None)], start=1):
        connection.execute(sa.text("INSERT INTO webhook_deliveries (id, event_id, subscription_id, state, attempts, "
                                   "last_status, last_error, created_at) VALUES (:id, :event, :sub, 'pending', 1, "
                                   ":status, :error, :now)"),
                           {"id": n, "event": "e2" if n == 3 else "e1", "sub": 1 if n == 1 else 2, "status": status,
                            "error": error, "now": NOW})


def test_old_secrets_keep_their_key_and_answer_excerpts_go(database_url: str) -> None:
    upgrade(database_url, "0005")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            _insert_old_rows(connection)
        upgrade(engine)
        with engine.connect() as connection:
            secrets = dict(connection.execute(sa.text("SELECT id, secret FROM webhook_subscriptions")).all())
            errors = dict(connection.execute(sa.text("SELECT id, last_error FROM webhook_deliveries")).all())
        for n, old in ((1, OLD_GENERATED), (2, OLD_CHOSEN)):
            body = b'{"id":"e1"}'
            headers = signature_headers(secrets[n], "e1", int(datetime.now(UTC).timestamp()), body)
            # the subscriber keeps the secret it has: as bytes, it is the key
            assert Webhook(old.encode()).verify(body, headers) == {"id": "e1"}
            assert Webhook(secrets[n]).verify(body, headers) == {"id": "e1"}
        # a key longer than the HMAC block is stored as its digest, which HMAC uses in its place anyway
        assert secrets[2] == "whsec_" + base64.b64encode(hashlib.sha256(OLD_CHOSEN.encode()).digest()).decode()
        assert secrets[1] == "whsec_" + base64.b64encode(OLD_GENERATED.encode()).decode()
        assert errors == {1: "HTTP 500", 2: "ConnectionError: refused", 3: None}

        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0005")
        with engine.connect() as connection:
            restored = dict(connection.execute(sa.text("SELECT id, secret FROM webhook_subscriptions")).all())
        # the long one's text cannot be recovered from its digest
        assert restored == {1: OLD_GENERATED, 2: secrets[2]}
    finally:
        engine.dispose()
