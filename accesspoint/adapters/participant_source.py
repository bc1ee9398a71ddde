"""What our SMP serves, read live from the store: participants whose receiving is enabled, their document types
and processes, and business cards built from their organisation's data.

Every SMP request reads the database, so enabling or disabling receiving, or changing a document type, is
visible at once (smp.server adds a short Cache-Control for clients and caches signatures by content).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from accesspoint.store.models import Participant
from smp.businesscard import BusinessCard, card_from_organisation
from smp.identifiers import DocumentTypeId, ParticipantId, ProcessId
from smp.server import Registration


class StoreParticipantSource:
    """smp.server.ParticipantSource over the gateway's database; `read` is `Gateway.read` (the gateway, built from
    the adapters, cannot be imported here)."""

    def __init__(self, read: Callable[[], AbstractContextManager[Session]]) -> None:
        self.read = read

    def _serving(self, session: Session, participant: ParticipantId) -> Participant | None:
        return session.scalar(
            select(Participant)
            .options(selectinload(Participant.document_types), selectinload(Participant.organisation))
            .where(
                Participant.scheme == participant.scheme,
                Participant.value_key == participant.value.lower(),
                Participant.receiving_enabled.is_(True),
            )
        )

    def document_types(self, participant: ParticipantId) -> Sequence[Registration] | None:
        with self.read() as session:
            found = self._serving(session, participant)
            if found is None:
                return None
            grouped: dict[str, list[ProcessId]] = {}
            for entry in sorted(found.document_types, key=lambda d: (d.document_type, d.process)):
                grouped.setdefault(entry.document_type, []).append(ProcessId.parse(entry.process))
        return [(DocumentTypeId.parse(doctype), processes) for doctype, processes in grouped.items()]

    def business_card(self, participant: ParticipantId) -> BusinessCard | None:
        with self.read() as session:
            found = self._serving(session, participant)
            if found is None:
                return None
            return organisation_card(found)


def organisation_card(participant: Participant) -> BusinessCard:
    """The Directory business card (v3) of one of our participants, from its organisation's master data."""
    organisation = participant.organisation
    return card_from_organisation(
        ParticipantId(participant.scheme, participant.value),
        name=organisation.name,
        country=organisation.country,
        org_number=organisation.org_number,
        vat_number=organisation.vat_number,
        contact_name=organisation.contact_name,
        contact_email=organisation.contact_email,
        contact_phone=organisation.contact_phone,
        registration_date=participant.registered_at.date() if participant.registered_at else None,
    )
