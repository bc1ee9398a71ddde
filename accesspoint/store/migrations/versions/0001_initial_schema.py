"""Initial schema: organisations, participants, API clients, messages with attempts and receipts, events, webhooks.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Frozen: it spells out every column instead of importing the models, so it creates the same schema forever.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REGISTRATION = "('unregistered', 'pending', 'registered', 'failed', 'registered-elsewhere')"


def _utc(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("org_number", sa.String(64), nullable=True),
        sa.Column("vat_number", sa.String(64), nullable=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("contact_name", sa.String(200), nullable=True),
        sa.Column("contact_email", sa.String(320), nullable=True),
        sa.Column("contact_phone", sa.String(64), nullable=True),
        _utc("created_at", False),
        _utc("updated_at", False),
        sa.CheckConstraint("length(country) = 2", name="ck_organisations_country_alpha2"),
        sa.PrimaryKeyConstraint("id", name="pk_organisations"),
        sa.UniqueConstraint("org_number", name="uq_organisations_org_number"),
    )

    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("token_prefix", sa.String(16), nullable=False),
        _utc("created_at", False),
        _utc("revoked_at", True),
        sa.CheckConstraint("role IN ('network', 'admin')", name="ck_api_clients_role"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_api_clients_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_clients"),
        sa.UniqueConstraint("token_hash", name="uq_api_clients_token_hash"),
    )
    op.create_index("ix_api_clients_organisation_id", "api_clients", ["organisation_id"])

    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(100), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("value_key", sa.String(256), nullable=False),
        sa.Column("receiving_enabled", sa.Boolean(), nullable=False),
        sa.Column("smp_status", sa.String(32), nullable=False),
        sa.Column("sml_status", sa.String(32), nullable=False),
        sa.Column("directory_status", sa.String(32), nullable=False),
        sa.Column("smp_error", sa.Text(), nullable=True),
        sa.Column("sml_error", sa.Text(), nullable=True),
        sa.Column("directory_error", sa.Text(), nullable=True),
        _utc("registered_at", True),
        _utc("created_at", False),
        _utc("updated_at", False),
        sa.CheckConstraint(f"smp_status IN {REGISTRATION}", name="ck_participants_smp_status"),
        sa.CheckConstraint(f"sml_status IN {REGISTRATION}", name="ck_participants_sml_status"),
        sa.CheckConstraint(f"directory_status IN {REGISTRATION}", name="ck_participants_directory_status"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_participants_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_participants"),
        sa.UniqueConstraint("scheme", "value_key", name="uq_participants_scheme_value_key"),
    )
    op.create_index("ix_participants_organisation_id", "participants", ["organisation_id"])

    op.create_table(
        "participant_document_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("document_type", sa.String(1024), nullable=False),
        sa.Column("process", sa.String(512), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name="fk_participant_document_types_participant_id_participants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_participant_document_types"),
        sa.UniqueConstraint("participant_id", "document_type", "process", name="uq_participant_document_types_entry"),
    )

    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _utc("created_at", False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_webhook_subscriptions_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscriptions"),
    )
    op.create_index("ix_webhook_subscriptions_organisation_id", "webhook_subscriptions", ["organisation_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("as4_message_id", sa.String(512), nullable=True),
        sa.Column("conversation_id", sa.String(512), nullable=True),
        sa.Column("sbdh_instance_id", sa.String(512), nullable=True),
        sa.Column("sender", sa.String(256), nullable=True),
        sa.Column("receiver", sa.String(256), nullable=True),
        sa.Column("document_type", sa.String(1024), nullable=True),
        sa.Column("process", sa.String(512), nullable=True),
        sa.Column("country_c1", sa.String(2), nullable=True),
        sa.Column("country_c4", sa.String(2), nullable=True),
        sa.Column("peer_ap_cn", sa.String(200), nullable=True),
        sa.Column("peer_endpoint_url", sa.String(2048), nullable=True),
        sa.Column("payload_size", sa.BigInteger(), nullable=True),
        sa.Column("payload_sha256", sa.String(64), nullable=True),
        sa.Column("blob_key", sa.String(128), nullable=True),
        sa.Column("document_size", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("next_attempt_at", True),
        _utc("deadline_at", True),
        sa.Column("locked_by", sa.String(200), nullable=True),
        _utc("locked_until", True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("error_hint", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("api_client_id", sa.Integer(), nullable=True),
        sa.Column("duplicate_of", sa.String(36), nullable=True),
        sa.Column("sbdh_instance_reused", sa.Boolean(), nullable=False),
        _utc("created_at", False),
        _utc("updated_at", False),
        _utc("received_at", True),
        _utc("sent_at", True),
        _utc("acked_at", True),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_messages_direction"),
        sa.CheckConstraint(
            "(direction = 'inbound' AND state IN ('received', 'new', 'acked'))"
            " OR (direction = 'outbound' AND state IN ('queued', 'sending', 'retrying', 'sent', 'failed'))",
            name="ck_messages_state_for_direction",
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_messages_attempts_not_negative"),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name="fk_messages_organisation_id_organisations"
        ),
        sa.ForeignKeyConstraint(
            ["api_client_id"],
            ["api_clients.id"],
            name="fk_messages_api_client_id_api_clients",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of"], ["messages.id"], name="fk_messages_duplicate_of_messages", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("direction", "as4_message_id", name="uq_messages_direction_as4_message_id"),
        sa.UniqueConstraint("api_client_id", "idempotency_key", name="uq_messages_api_client_id_idempotency_key"),
    )
    op.create_index(
        "ix_messages_direction_state_next_attempt_at", "messages", ["direction", "state", "next_attempt_at"]
    )
    op.create_index("ix_messages_direction_sbdh_instance_id", "messages", ["direction", "sbdh_instance_id"])
    op.create_index(
        "ix_messages_organisation_id_direction_created_at", "messages", ["organisation_id", "direction", "created_at"]
    )

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        _utc("started_at", False),
        _utc("finished_at", True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("endpoint_url", sa.String(2048), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('sent', 'transient', 'permanent')", name="ck_attempts_outcome"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_attempts_message_id_messages", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        sa.UniqueConstraint("message_id", "number", name="uq_attempts_message_id_number"),
    )

    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("as4_message_id", sa.String(512), nullable=False),
        sa.Column("ref_to_message_id", sa.String(512), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _utc("created_at", False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_receipts_message_id_messages", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_receipts"),
        sa.UniqueConstraint("message_id", name="uq_receipts_message_id"),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _utc("created_at", False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_events_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_events_message_id_messages", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_message_id", "events", ["message_id"])
    op.create_index("ix_events_organisation_id_created_at", "events", ["organisation_id", "created_at"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("next_attempt_at", True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _utc("delivered_at", True),
        _utc("created_at", False),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="ck_webhook_deliveries_state"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name="fk_webhook_deliveries_event_id_events", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name="fk_webhook_deliveries_subscription_id_webhook_subscriptions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_webhook_deliveries_event_id_subscription_id"),
    )
    op.create_index("ix_webhook_deliveries_state_next_attempt_at", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_subscription_id", "webhook_deliveries", ["subscription_id"])


def downgrade() -> None:
    # dependants first; dropping a table drops its indexes
    for table in (
        "webhook_deliveries",
        "events",
        "receipts",
        "attempts",
        "messages",
        "webhook_subscriptions",
        "participant_document_types",
        "participants",
        "api_clients",
        "organisations",
    ):
        op.drop_table(table)
