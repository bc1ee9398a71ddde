"""Look-ups with Peppol's comparison rules."""

from __future__ import annotations

from sqlalchemy.orm import Session

from accesspoint.store.models import (
    BIS_BILLING_CREDIT_NOTE,
    BIS_BILLING_INVOICE,
    BIS_BILLING_PROCESS,
    Direction,
    Message,
    MessageState,
    Organisation,
    Participant,
)
from accesspoint.store.queries import find_participant, inbound_by_as4_id, serving_participant

SCHEME = "iso6523-actorid-upis"


def _participant(session: Session, value: str, receiving: bool) -> Participant:
    organisation = Organisation(name="Acme AB", country="SE")
    participant = Participant(organisation=organisation, value=value, receiving_enabled=receiving)
    participant.add_default_document_types()
    session.add(participant)
    session.commit()
    return participant


def test_participant_value_is_case_insensitive_and_scheme_exact(db_session: Session) -> None:
    participant = _participant(db_session, "0088:7300010000001AB", receiving=True)
    assert find_participant(db_session, SCHEME, "0088:7300010000001ab") is participant
    assert find_participant(db_session, SCHEME, "0088:7300010000001AB") is participant
    assert find_participant(db_session, SCHEME.upper(), "0088:7300010000001ab") is None
    assert find_participant(db_session, SCHEME, "0088:7300010000001") is None


def test_served_only_for_listed_document_types_and_when_receiving(db_session: Session) -> None:
    served = _participant(db_session, "0007:5560000001", receiving=True)
    _participant(db_session, "0007:5560000002", receiving=False)
    assert (
        serving_participant(db_session, SCHEME, "0007:5560000001", BIS_BILLING_INVOICE, BIS_BILLING_PROCESS) is served
    )
    assert (
        serving_participant(db_session, SCHEME, "0007:5560000001", BIS_BILLING_CREDIT_NOTE, BIS_BILLING_PROCESS)
        is served
    )
    # document type identifiers compare exactly
    assert (
        serving_participant(db_session, SCHEME, "0007:5560000001", BIS_BILLING_INVOICE.upper(), BIS_BILLING_PROCESS)
        is None
    )
    assert serving_participant(db_session, SCHEME, "0007:5560000001", BIS_BILLING_INVOICE, "other::process") is None
    # receiving switched off: not serviced although the document types are listed
    assert serving_participant(db_session, SCHEME, "0007:5560000002", BIS_BILLING_INVOICE, BIS_BILLING_PROCESS) is None


def test_inbound_duplicate_lookup_ignores_outbound(db_session: Session) -> None:
    inbound = Message(direction=Direction.INBOUND, state=MessageState.RECEIVED, as4_message_id="a@peer")
    outbound = Message(direction=Direction.OUTBOUND, state=MessageState.SENT, as4_message_id="b@us")
    db_session.add_all([inbound, outbound])
    db_session.commit()
    assert inbound_by_as4_id(db_session, "a@peer") is inbound
    assert inbound_by_as4_id(db_session, "b@us") is None
