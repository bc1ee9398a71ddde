"""Look-ups that carry Peppol's comparison rules, so callers cannot get them subtly wrong.

Participant identifiers: scheme compared exactly, value case-insensitively (Policy for use of Identifiers;
peppol-commons lower-cases the value). Document type and process identifiers: exact (`scheme::value`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from accesspoint.store.models import Direction, Message, Participant, ParticipantDocumentType


def find_participant(session: Session, scheme: str, value: str) -> Participant | None:
    return session.scalar(
        select(Participant).where(Participant.scheme == scheme, Participant.value_key == value.lower())
    )


def serving_participant(
    session: Session, scheme: str, value: str, document_type: str, process: str
) -> Participant | None:
    """The participant we receive this document type + process for, None when we do not (PEPPOL:NOT_SERVICED).

    A participant whose receiving is switched off is not served, whatever document types it lists.
    """
    return session.scalar(
        select(Participant)
        .join(ParticipantDocumentType)
        .where(
            Participant.scheme == scheme,
            Participant.value_key == value.lower(),
            Participant.receiving_enabled.is_(True),
            ParticipantDocumentType.document_type == document_type,
            ParticipantDocumentType.process == process,
        )
    )


def inbound_by_as4_id(session: Session, as4_message_id: str) -> Message | None:
    """The inbound message stored under this AS4 MessageId: the persistent duplicate check."""
    return session.scalar(
        select(Message).where(Message.direction == Direction.INBOUND, Message.as4_message_id == as4_message_id)
    )
