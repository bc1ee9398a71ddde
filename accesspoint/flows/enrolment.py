"""Enrolling a customer: an organisation with its participant identifiers, receiving switched on for those that
ask for it. One place for it, used by the admin API (`POST /admin/api/organisations`, `.../participants`) and the
command line (`peppol-ap organisations create`), so both check ownership, pick the default document types and
write the audit record the same way.

The rows and their audit records are committed first; receiving is switched on afterwards (it calls our SMP, the
SML and the Directory, whose failures are recorded on the participant and retried, never rolled back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accesspoint.flows import registrations
from accesspoint.flows.registrations import Registrar
from accesspoint.gateway import Gateway
from accesspoint.store import audit
from accesspoint.store.audit import Actor, organisation_snapshot, participant_snapshot
from accesspoint.store.models import Organisation, Participant, ParticipantDocumentType
from accesspoint.store.queries import find_participant
from smp.identifiers import ParticipantId

ORGANISATION_CREATE = "organisation.create"
PARTICIPANT_CREATE = "participant.create"


@dataclass(frozen=True)
class ParticipantSpec:
    identifier: ParticipantId
    document_types: list[tuple[str, str]] | None = None  # None: the defaults (BIS Billing invoice and credit note)
    receiving: bool = False


class EnrolmentConflict(Exception):
    """What is asked for clashes with what exists. `index` names the participant spec at fault, `field` an
    organisation field (both None: a concurrent change); `participant_id` the participant holding the identifier."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None,
                 participant_id: int | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.participant_id = participant_id


class OrganisationNotFound(LookupError):
    pass


def create_organisation(gateway: Gateway, fields: dict[str, str | None], participants: Sequence[ParticipantSpec],
                        actor: Actor) -> int:
    """A new organisation (fields already cleaned by flows.organisations.clean_organisation) with its participants;
    its id."""
    try:
        with gateway.read() as session:
            if fields.get("org_number") and session.scalar(
                    select(Organisation.id).where(Organisation.org_number == fields["org_number"])) is not None:
                raise EnrolmentConflict(f"an organisation with number {fields['org_number']} exists already",
                                        field="org_number")
            for index, spec in enumerate(participants):
                _check_free(session, spec.identifier, index)
            organisation = Organisation(**fields)
            session.add(organisation)
            created = [(_new_participant(session, organisation, spec), spec.receiving) for spec in participants]
            session.flush()
            organisation_id = organisation.id
            audit.record(session, actor, ORGANISATION_CREATE, audit.ORGANISATION, organisation_id,
                         after=organisation_snapshot(organisation))
            to_enable = [participant.id for participant, receiving in created if receiving]
    except IntegrityError:
        raise EnrolmentConflict("the organisation or one of its identifiers was created by someone else at the same "
                                "moment; read it and try again") from None
    _enable(gateway, to_enable, actor)
    return organisation_id


def add_participant(gateway: Gateway, organisation_id: int, spec: ParticipantSpec, actor: Actor) -> int:
    """A new participant identifier of an existing organisation; its id."""
    try:
        with gateway.read() as session:
            organisation = session.get(Organisation, organisation_id)
            if organisation is None:
                raise OrganisationNotFound(f"organisation {organisation_id} does not exist")
            _check_free(session, spec.identifier, None)
            participant = _new_participant(session, organisation, spec)
            session.flush()
            participant_id = participant.id
            audit.record(session, actor, PARTICIPANT_CREATE, audit.PARTICIPANT, participant_id,
                         after=participant_snapshot(participant))
    except IntegrityError:
        raise EnrolmentConflict(f"{spec.identifier.uri} was created by someone else at the same moment") from None
    if spec.receiving:
        _enable(gateway, [participant_id], actor)
    return participant_id


def _check_free(session: Session, identifier: ParticipantId, index: int | None) -> None:
    existing = find_participant(session, identifier.scheme, identifier.value)
    if existing is not None:
        owner = existing.organisation
        raise EnrolmentConflict(f"{identifier.uri} is already participant {existing.id} of organisation {owner.id} "
                                f"({owner.name})", index=index, participant_id=existing.id)


def _new_participant(session: Session, organisation: Organisation, spec: ParticipantSpec) -> Participant:
    participant = Participant(scheme=spec.identifier.scheme, value=spec.identifier.value, organisation=organisation)
    session.add(participant)
    if spec.document_types is None:
        participant.add_default_document_types()
    else:
        participant.document_types = [ParticipantDocumentType(document_type=d, process=p)
                                      for d, p in spec.document_types]
    return participant


def _enable(gateway: Gateway, participant_ids: list[int], actor: Actor) -> None:
    if participant_ids:
        with Registrar(gateway) as registrar:
            for participant_id in participant_ids:
                registrations.enable_receiving(gateway, participant_id, registrar=registrar, actor=actor)
