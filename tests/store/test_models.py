"""Constraints, cascades and value handling of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from accesspoint.store.database import session_factory
from accesspoint.store.models import (
    DEFAULT_DOCUMENT_TYPES,
    ApiClient,
    ApiRole,
    Attempt,
    AttemptOutcome,
    DeliveryState,
    Direction,
    Event,
    Message,
    MessageState,
    Organisation,
    Participant,
    ParticipantDocumentType,
    Receipt,
    RegistrationStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from accesspoint.store.tokens import hash_token, new_token


def _organisation(session: Session, org_number: str = "556000-0001") -> Organisation:
    organisation = Organisation(name="Acme AB", org_number=org_number, country="SE")
    session.add(organisation)
    session.flush()
    return organisation


def _inbound(as4_id: str | None, **fields: object) -> Message:
    return Message(direction=Direction.INBOUND, state=MessageState.RECEIVED, as4_message_id=as4_id, **fields)


def _outbound(**fields: object) -> Message:
    return Message(direction=Direction.OUTBOUND, state=MessageState.QUEUED, **fields)


def _rejected(session: Session, *objects: object) -> None:
    """Adding `objects` must violate a constraint; the session is usable afterwards."""
    session.add_all(objects)
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_participant_identifier_is_unique_case_insensitively(db_session: Session) -> None:
    first = _organisation(db_session)
    other = _organisation(db_session, "556000-0002")
    db_session.add(Participant(organisation_id=first.id, value="0007:ABC123"))
    db_session.commit()
    _rejected(db_session, Participant(organisation_id=other.id, value="0007:abc123"))
    # another scheme is another identifier
    db_session.add(Participant(organisation_id=other.id, scheme="other-scheme", value="0007:abc123"))
    db_session.commit()
    assert _count(db_session, Participant) == 2


def test_value_key_follows_every_change_of_value(db_session: Session) -> None:
    participant = Participant(organisation_id=_organisation(db_session).id, value="0088:7300010000001AB")
    assert participant.value_key == "0088:7300010000001ab"
    participant.value = "0007:XYZ"
    db_session.add(participant)
    db_session.commit()
    stored = db_session.execute(text("SELECT value, value_key FROM participants")).one()
    assert tuple(stored) == ("0007:XYZ", "0007:xyz")
    assert participant.uri == "iso6523-actorid-upis::0007:XYZ"


def test_new_participant_defaults(db_session: Session) -> None:
    participant = Participant(organisation_id=_organisation(db_session).id, value="0007:5560000001")
    db_session.add(participant)
    db_session.commit()
    assert participant.scheme == "iso6523-actorid-upis"
    assert participant.receiving_enabled is False
    assert {participant.smp_status, participant.sml_status, participant.directory_status} == {"unregistered"}


def test_registration_status_is_stored_as_its_value(db_session: Session) -> None:
    participant = Participant(
        organisation_id=_organisation(db_session).id,
        value="0007:5560000001",
        sml_status=RegistrationStatus.REGISTERED_ELSEWHERE,
        sml_error="already registered by another SMP; ask the customer for a migration key",
    )
    db_session.add(participant)
    db_session.commit()
    assert db_session.execute(text("SELECT sml_status FROM participants")).scalar() == "registered-elsewhere"
    _rejected(db_session, Participant(organisation_id=participant.organisation_id, value="0007:2", smp_status="ok"))


def test_default_document_types_are_bis_billing_and_not_duplicated(db_session: Session) -> None:
    participant = Participant(organisation_id=_organisation(db_session).id, value="0007:5560000001")
    participant.add_default_document_types()
    participant.add_default_document_types()
    db_session.add(participant)
    db_session.commit()
    stored = {(d.document_type, d.process) for d in db_session.scalars(select(ParticipantDocumentType))}
    assert stored == set(DEFAULT_DOCUMENT_TYPES)
    assert all("poacc:billing:3.0" in document_type for document_type, _ in stored)
    invoice, process = DEFAULT_DOCUMENT_TYPES[0]
    again = ParticipantDocumentType(participant_id=participant.id, document_type=invoice, process=process)
    _rejected(db_session, again)


def test_deleting_an_organisation_cascades_in_the_database(db_session: Session) -> None:
    organisation = _organisation(db_session)
    participant = Participant(organisation_id=organisation.id, value="0007:5560000001")
    participant.add_default_document_types()
    client, _ = ApiClient.issue("erp", ApiRole.NETWORK, organisation.id)
    subscription = WebhookSubscription(organisation_id=organisation.id, url="https://erp.example/hook", secret="s")
    db_session.add_all([participant, client, subscription])
    db_session.commit()
    # a bulk DELETE bypasses the ORM: only ON DELETE CASCADE can remove the dependants
    db_session.execute(delete(Organisation).where(Organisation.id == organisation.id))
    db_session.commit()
    for model in (Participant, ParticipantDocumentType, ApiClient, WebhookSubscription):
        assert _count(db_session, model) == 0, model.__name__


def test_an_organisation_with_messages_cannot_be_deleted(db_session: Session) -> None:
    organisation = _organisation(db_session)
    db_session.add(_inbound("m1@peer", organisation_id=organisation.id))
    db_session.commit()
    with pytest.raises(IntegrityError):
        db_session.execute(delete(Organisation).where(Organisation.id == organisation.id))
        db_session.commit()
    db_session.rollback()
    assert _count(db_session, Message) == 1


def test_as4_message_id_is_unique_per_direction(db_session: Session) -> None:
    db_session.add(_inbound("dup@peer.example"))
    db_session.commit()
    _rejected(db_session, _inbound("dup@peer.example"))
    # the same id travelling the other way, and outbound messages not yet given an id, are fine
    db_session.add_all([_outbound(as4_message_id="dup@peer.example"), _outbound(), _outbound()])
    db_session.commit()
    assert _count(db_session, Message) == 4


def test_state_must_belong_to_the_direction(db_session: Session) -> None:
    _rejected(db_session, Message(direction=Direction.INBOUND, state=MessageState.QUEUED))
    _rejected(db_session, Message(direction=Direction.OUTBOUND, state=MessageState.ACKED))
    _rejected(db_session, Message(direction="sideways", state=MessageState.QUEUED))


def test_idempotency_key_is_unique_per_api_client(db_session: Session) -> None:
    organisation = _organisation(db_session)
    first, _ = ApiClient.issue("erp", ApiRole.NETWORK, organisation.id)
    second, _ = ApiClient.issue("routing", ApiRole.NETWORK, organisation.id)
    db_session.add_all([first, second])
    db_session.flush()
    db_session.add(_outbound(api_client_id=first.id, idempotency_key="invoice-42"))
    db_session.commit()
    _rejected(db_session, _outbound(api_client_id=first.id, idempotency_key="invoice-42"))
    db_session.add_all(
        [
            _outbound(api_client_id=second.id, idempotency_key="invoice-42"),
            _outbound(api_client_id=first.id),
            _outbound(api_client_id=first.id),
        ]
    )
    db_session.commit()
    assert _count(db_session, Message) == 4


def test_deleting_a_message_removes_its_evidence_and_unlinks_duplicates(db_session: Session) -> None:
    original = _outbound(as4_message_id="orig@us", sbdh_instance_id="inst-1")
    db_session.add(original)
    db_session.flush()
    reuse = _outbound(
        as4_message_id="again@us", sbdh_instance_id="inst-1", duplicate_of=original.id, sbdh_instance_reused=True
    )
    original.attempt_log.append(Attempt(number=1, outcome=AttemptOutcome.SENT, endpoint_url="https://ap/as4"))
    original.receipt = Receipt(as4_message_id="r@peer", ref_to_message_id="orig@us", raw=b"<r/>", sha256="0" * 64)
    db_session.add_all([reuse, Event(message_id=original.id, type="outbound.sent", data={"id": original.id})])
    db_session.commit()
    db_session.execute(delete(Message).where(Message.id == original.id))
    db_session.commit()
    for model in (Attempt, Receipt, Event):
        assert _count(db_session, model) == 0, model.__name__
    db_session.refresh(reuse)
    assert reuse.duplicate_of is None
    assert reuse.sbdh_instance_reused is True


def test_attempt_numbers_are_unique_per_message_and_outcomes_checked(db_session: Session) -> None:
    message = _outbound()
    db_session.add(message)
    db_session.flush()
    db_session.add(Attempt(message_id=message.id, number=1, outcome=AttemptOutcome.TRANSIENT, http_status=503))
    db_session.commit()
    _rejected(db_session, Attempt(message_id=message.id, number=1))
    _rejected(db_session, Attempt(message_id=message.id, number=2, outcome="maybe"))


def test_receipt_keeps_the_exact_bytes_and_is_one_per_message(db_engine: Engine) -> None:
    raw = b'<?xml version="1.0"?>\r\n<S12:Envelope>\x00\xff\xfe signed bytes\n</S12:Envelope>'
    with session_factory(db_engine)() as session:
        message = _inbound("m@peer")
        message.receipt = Receipt(as4_message_id="r@us", ref_to_message_id="m@peer", raw=raw, sha256="a" * 64)
        session.add(message)
        session.commit()
        message_id = message.id
    with session_factory(db_engine)() as session:
        stored = session.scalars(select(Receipt)).one()
        assert stored.raw == raw
        assert stored.message.id == message_id
        second = Receipt(message_id=message_id, as4_message_id="x", ref_to_message_id="y", raw=b"", sha256="")
        _rejected(session, second)


def test_timestamps_come_back_as_the_same_instant_in_utc(db_engine: Engine) -> None:
    due = datetime(2026, 11, 21, 21, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with session_factory(db_engine)() as session:
        message = _outbound(next_attempt_at=due)
        session.add(message)
        session.commit()
        message_id = message.id
    with session_factory(db_engine)() as session:
        stored = session.get(Message, message_id)
        assert stored is not None
        assert stored.next_attempt_at == due
        assert stored.next_attempt_at.utcoffset() == timedelta(0)
        assert stored.created_at.tzinfo is not None
        assert abs(datetime.now(UTC) - stored.created_at) < timedelta(minutes=5)


def test_naive_datetimes_are_refused(db_session: Session) -> None:
    db_session.add(_outbound(next_attempt_at=datetime(2026, 11, 21, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime"):
        db_session.commit()
    db_session.rollback()


def test_events_keep_json_and_webhook_deliveries_are_unique(db_session: Session) -> None:
    organisation = _organisation(db_session)
    subscription = WebhookSubscription(
        organisation_id=organisation.id, url="https://erp.example/hook", secret="k", events=["inbound.received"]
    )
    event = Event(organisation_id=organisation.id, type="inbound.received", data={"message": "x", "n": [1, 2]})
    db_session.add_all([subscription, event])
    db_session.flush()
    db_session.add(WebhookDelivery(event_id=event.id, subscription_id=subscription.id))
    db_session.commit()
    assert re.fullmatch(r"[0-9a-f-]{36}", event.id)
    db_session.expire_all()
    assert db_session.get(Event, event.id).data == {"message": "x", "n": [1, 2]}  # type: ignore[union-attr]
    assert db_session.scalars(select(WebhookSubscription)).one().events == ["inbound.received"]
    assert db_session.scalars(select(WebhookDelivery)).one().state == DeliveryState.PENDING
    _rejected(db_session, WebhookDelivery(event_id=event.id, subscription_id=subscription.id))


def test_tokens_are_random_and_only_their_hash_is_stored(db_session: Session) -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(re.fullmatch(r"pap_[A-Za-z0-9_-]{43}", token) for token in tokens)
    # FIPS 180-2 test vector: sha256("abc")
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    client, token = ApiClient.issue("admin console", ApiRole.ADMIN)
    db_session.add(client)
    db_session.commit()
    row = db_session.execute(text("SELECT token_hash, token_prefix FROM api_clients")).one()
    assert token not in row
    assert row.token_prefix == token[:8]
    found = db_session.scalars(select(ApiClient).where(ApiClient.token_hash == hash_token(token))).one()
    assert found.id == client.id
    assert found.active
    assert db_session.scalars(select(ApiClient).where(ApiClient.token_hash == hash_token(token + "x"))).first() is None
    clash = ApiClient(name="copy", role=ApiRole.ADMIN, scopes=["admin"], token_hash=client.token_hash,
                      token_prefix="pap_")
    _rejected(db_session, clash)
    _rejected(db_session, ApiClient(name="x", role="root", scopes=["admin"], token_hash=hash_token(new_token()),
                                    token_prefix="pap_"))
    # scopes are not optional: a token without them could do nothing, or be mistaken for one that may do anything
    _rejected(db_session, ApiClient(name="y", role=ApiRole.ADMIN, token_hash=hash_token(new_token()),
                                    token_prefix="pap_"))


def test_payload_sizes_beyond_32_bits(db_session: Session) -> None:
    message = _inbound("big@peer", payload_size=3 * 2**30, document_size=5 * 2**30)
    db_session.add(message)
    db_session.commit()
    db_session.expire_all()
    assert (message.payload_size, message.document_size) == (3 * 2**30, 5 * 2**30)
