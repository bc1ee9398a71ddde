"""The gateway's state: organisations and their participants, API clients, messages with their evidence, events
and webhooks.

One schema for SQLite and PostgreSQL. Every timestamp is timezone-aware UTC (`UtcDateTime`). State columns are
plain strings guarded by CHECK constraints built from the enums below, so other code compares against the enum
members and the database refuses a typo.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from accesspoint.store.scopes import ApiRole, Scope, scopes_for
from accesspoint.store.tokens import hash_token, new_token, token_prefix
from accesspoint.store.types import UtcDateTime, utcnow

# Peppol's identifier policy caps participant values at 50, process values at 200 and document type values at
# 500 characters; the columns add room for the `scheme::` prefix and slack for peers that stretch the policy.
PARTICIPANT_LENGTH = 256
DOCUMENT_TYPE_LENGTH = 1024
PROCESS_LENGTH = 512
AS4_ID_LENGTH = 512
# a UBL cbc:ID longer than this is cut when stored: it is a search key, the document keeps the whole ID
DOCUMENT_ID_LENGTH = 200

PARTICIPANT_SCHEME = "iso6523-actorid-upis"

# Peppol BIS Billing 3.0: what a participant receives unless told otherwise.
BIS_BILLING_PROCESS = "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
BIS_BILLING_INVOICE = (
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
BIS_BILLING_CREDIT_NOTE = (
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
DEFAULT_DOCUMENT_TYPES: tuple[tuple[str, str], ...] = (
    (BIS_BILLING_INVOICE, BIS_BILLING_PROCESS),
    (BIS_BILLING_CREDIT_NOTE, BIS_BILLING_PROCESS),
)


class RegistrationStatus(StrEnum):
    UNREGISTERED = "unregistered"
    PENDING = "pending"
    REGISTERED = "registered"
    FAILED = "failed"
    # another provider's SMP already holds the participant in the SML (a migration key is needed)
    REGISTERED_ELSEWHERE = "registered-elsewhere"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ValidationMode(StrEnum):
    """Organisation.validation_mode: a submission with a fatal BIS finding is refused (the rule for a sending AP),
    or, during a migration period, sent anyway with the findings in the answer and stored."""

    REFUSE = "refuse"
    WARN = "warn"


class MessageState(StrEnum):
    # inbound: stored and receipted, then handed to the network: `new` until the network acknowledges it
    RECEIVED = "received"
    NEW = "new"
    ACKED = "acked"
    # outbound
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


INBOUND_STATES = (MessageState.RECEIVED, MessageState.NEW, MessageState.ACKED)
OUTBOUND_STATES = (
    MessageState.QUEUED,
    MessageState.SENDING,
    MessageState.RETRYING,
    MessageState.SENT,
    MessageState.FAILED,
)


class AttemptOutcome(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def _in(column: str, values: tuple[StrEnum, ...] | type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    # Explicit constraint names keep migrations identical on SQLite and PostgreSQL and let later revisions
    # drop or alter a constraint by name.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Organisation(Timestamps, Base):
    """A company of the operator's network: it owns participant identifiers, API clients and webhooks."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    org_number: Mapped[str | None] = mapped_column(String(64), unique=True)
    vat_number: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    contact_phone: Mapped[str | None] = mapped_column(String(64))
    # what a fatal BIS validation finding does to a submission: refuse it, or (for a migration period) send it
    # and say so in the answer; see ValidationMode
    validation_mode: Mapped[str] = mapped_column(String(8), default="refuse", server_default="refuse")

    participants: Mapped[list[Participant]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (CheckConstraint("length(country) = 2", name="country_alpha2"),)


class Participant(Timestamps, Base):
    """A Peppol participant identifier of an organisation, with its registration status at SMP, SML, Directory.

    `value_key` is the lower-cased value: Peppol participant identifiers of the iso6523 scheme compare
    case-insensitively, and one identifier can belong to one organisation only.
    """

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    scheme: Mapped[str] = mapped_column(String(100), default=PARTICIPANT_SCHEME)
    value: Mapped[str] = mapped_column(String(PARTICIPANT_LENGTH))
    value_key: Mapped[str] = mapped_column(String(PARTICIPANT_LENGTH))
    # receiving costs the customer: off until someone enables it (enabling registers at SMP/SML)
    receiving_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    smp_status: Mapped[str] = mapped_column(String(32), default=RegistrationStatus.UNREGISTERED)
    sml_status: Mapped[str] = mapped_column(String(32), default=RegistrationStatus.UNREGISTERED)
    directory_status: Mapped[str] = mapped_column(String(32), default=RegistrationStatus.UNREGISTERED)
    smp_error: Mapped[str | None] = mapped_column(Text)
    sml_error: Mapped[str | None] = mapped_column(Text)
    directory_error: Mapped[str | None] = mapped_column(Text)
    registered_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(back_populates="participants")
    document_types: Mapped[list[ParticipantDocumentType]] = relationship(
        back_populates="participant", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("scheme", "value_key"),
        CheckConstraint(_in("smp_status", RegistrationStatus), name="smp_status"),
        CheckConstraint(_in("sml_status", RegistrationStatus), name="sml_status"),
        CheckConstraint(_in("directory_status", RegistrationStatus), name="directory_status"),
    )

    @validates("value")
    def _derive_value_key(self, _key: str, value: str) -> str:
        # value_key follows value on every assignment, so the uniqueness rule cannot be bypassed by a caller
        self.value_key = value.lower()
        return value

    @property
    def uri(self) -> str:
        """`scheme::value`, the form used in SBDH, ebMS and SMP URLs."""
        return f"{self.scheme}::{self.value}"

    def add_default_document_types(self) -> None:
        """Peppol BIS Billing 3.0 invoice and credit note, the default for a new participant."""
        have = {(d.document_type, d.process) for d in self.document_types}
        for document_type, process in DEFAULT_DOCUMENT_TYPES:
            if (document_type, process) not in have:
                self.document_types.append(ParticipantDocumentType(document_type=document_type, process=process))


class ParticipantDocumentType(Base):
    """A document type + process a participant receives (`scheme::value` each, as published in the SMP)."""

    __tablename__ = "participant_document_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    document_type: Mapped[str] = mapped_column(String(DOCUMENT_TYPE_LENGTH))
    process: Mapped[str] = mapped_column(String(PROCESS_LENGTH))

    participant: Mapped[Participant] = relationship(back_populates="document_types")

    # named by hand: the conventional name would pass PostgreSQL's 63-character limit and be cut
    __table_args__ = (
        UniqueConstraint("participant_id", "document_type", "process", name="uq_participant_document_types_entry"),
    )


class ApiClient(Base):
    """A bearer token holder of the REST API. Only the token's sha256 is stored; the token is shown once.

    `scopes` (JSON list of accesspoint.store.scopes.Scope values of the role) say which routes it may use;
    `expires_at` (optional) ends it like a revocation; `last_used_at` is updated at most every few minutes.
    """

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint(_in("role", ApiRole), name="role"),)

    @classmethod
    def issue(cls, name: str, role: ApiRole, organisation_id: int | None = None, *,
              scopes: list[Scope] | None = None, expires_at: datetime | None = None) -> tuple[ApiClient, str]:
        """A new client and its token; the caller shows the token once and never stores it. Without `scopes`,
        the full set of the role."""
        token = new_token()
        client = cls(
            name=name,
            role=role,
            organisation_id=organisation_id,
            scopes=[str(scope) for scope in scopes_for(role, scopes)],
            expires_at=expires_at,
            token_hash=hash_token(token),
            token_prefix=token_prefix(token),
        )
        return client, token

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class Message(Base):
    """One AS4 user message, inbound or outbound. The payload (the complete SBD) lives in the blob store.

    `as4_message_id` is unique per direction: it is the persistent, shared duplicate check for inbound
    messages, and it is NULL for an outbound message until the sender assigns one.
    """

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    direction: Mapped[str] = mapped_column(String(8))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    as4_message_id: Mapped[str | None] = mapped_column(String(AS4_ID_LENGTH))
    conversation_id: Mapped[str | None] = mapped_column(String(AS4_ID_LENGTH))
    sbdh_instance_id: Mapped[str | None] = mapped_column(String(AS4_ID_LENGTH))
    # the business document's own ID (UBL cbc:ID: the invoice number), for finding a message by it
    document_id: Mapped[str | None] = mapped_column(String(DOCUMENT_ID_LENGTH))
    sender: Mapped[str | None] = mapped_column(String(PARTICIPANT_LENGTH))
    receiver: Mapped[str | None] = mapped_column(String(PARTICIPANT_LENGTH))
    document_type: Mapped[str | None] = mapped_column(String(DOCUMENT_TYPE_LENGTH))
    process: Mapped[str | None] = mapped_column(String(PROCESS_LENGTH))
    country_c1: Mapped[str | None] = mapped_column(String(2))
    country_c4: Mapped[str | None] = mapped_column(String(2))
    peer_ap_cn: Mapped[str | None] = mapped_column(String(200))
    peer_endpoint_url: Mapped[str | None] = mapped_column(String(2048))
    # bytes; BigInteger because AS4 payloads may pass 2 GiB (Domibus allows that much)
    payload_size: Mapped[int | None] = mapped_column(BigInteger)
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    blob_key: Mapped[str | None] = mapped_column(String(128))
    document_size: Mapped[int | None] = mapped_column(BigInteger)
    # outbound: the HTTP body (and its Content-Type) of a try that got no answer, resent byte for byte
    wire_blob_key: Mapped[str | None] = mapped_column(String(128))
    wire_content_type: Mapped[str | None] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_reason: Mapped[str | None] = mapped_column(Text)
    error_hint: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # sha256 of the submission the key came with: the same key with another request is refused, not replayed
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    api_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id", ondelete="SET NULL"))
    # an earlier message with the same SBDH InstanceIdentifier; the flag survives the original's deletion
    duplicate_of: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    sbdh_instance_reused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    received_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    # the BIS validation report (accesspoint.core.validation.Report.to_dict()); NULL: not validated (yet)
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # inbound: validation is due (set by the post-receipt action, cleared when the report is stored)
    validation_due_at: Mapped[datetime | None]

    attempt_log: Mapped[list[Attempt]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True, order_by="Attempt.number"
    )
    receipt: Mapped[Receipt | None] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("direction", "as4_message_id"),
        UniqueConstraint("api_client_id", "idempotency_key"),
        CheckConstraint(_in("direction", Direction), name="direction"),
        CheckConstraint(
            f"(direction = 'inbound' AND {_in('state', INBOUND_STATES)})"
            f" OR (direction = 'outbound' AND {_in('state', OUTBOUND_STATES)})",
            name="state_for_direction",
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # the worker claim: due outbound messages by state and time
        Index(None, "direction", "state", "next_attempt_at"),
        Index(None, "direction", "sbdh_instance_id"),
        Index(None, "organisation_id", "direction", "created_at"),
        Index(None, "organisation_id", "direction", "document_id"),
        # the orphaned blob sweep asks which of the blobs it listed a message refers to (maintenance.py)
        Index(None, "blob_key"),
        Index(None, "wire_blob_key"),
        Index(None, "validation_due_at"),
    )


class Attempt(Base):
    """One try to deliver an outbound message to the receiving AP."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_reason: Mapped[str | None] = mapped_column(Text)
    endpoint_url: Mapped[str | None] = mapped_column(String(2048))
    http_status: Mapped[int | None] = mapped_column(Integer)

    message: Mapped[Message] = relationship(back_populates="attempt_log")

    __table_args__ = (
        UniqueConstraint("message_id", "number"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', AttemptOutcome)}", name="outcome"),
    )


class Receipt(Base):
    """The AS4 receipt of a message as evidence, byte for byte as it went over the wire.

    Inbound: the receipt we sent, so a duplicate gets the original signed receipt again.
    Outbound: the receipt the receiving AP returned.
    """

    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    as4_message_id: Mapped[str] = mapped_column(String(AS4_ID_LENGTH))
    ref_to_message_id: Mapped[str] = mapped_column(String(AS4_ID_LENGTH))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="receipt")


class Event(Base):
    """Something that happened, for webhooks and polling; consumers drop repeats by `id`."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index(None, "organisation_id", "created_at"),)


class WebhookSubscription(Base):
    """Where an organisation wants its events POSTed; `secret` keys the HMAC signature of each delivery."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    # whsec_ + base64 of the HMAC key (Standard Webhooks)
    secret: Mapped[str] = mapped_column(String(200))
    # event types, e.g. ["inbound.received", "outbound.failed"]
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one subscription, retried with backoff until delivered or given up."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        CheckConstraint(_in("state", DeliveryState), name="state"),
        Index(None, "state", "next_attempt_at"),
    )


class WorkerHeartbeat(Base):
    """The last sign of life of one `peppol-ap worker` process, so /health can say when none is running."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<host>:<pid>"
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditRecord(Base):
    """One admin action (organisation, participant, token, SML, import, retry), written in the transaction of the
    change it describes (accesspoint.store.audit). `before`/`after` are JSON snapshots without secrets; `actor` is
    the token's name or `cli:<os user>`, `api_client_id` the token's id (no foreign key: the record outlives it)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    api_client_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        # the admin API pages by (created_at, id) and filters by action and target
        Index(None, "created_at", "id"),
        Index(None, "action", "created_at"),
        Index(None, "target_type", "target_id"),
    )


class RetentionCount(Base):
    """How much retention (accesspoint.flows.retention) removed so far, by kind: counted in the transaction of the
    removal, so the `/metrics` counter is the same whichever process serves the scrape and survives restarts."""

    __tablename__ = "retention_counts"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    removed: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
