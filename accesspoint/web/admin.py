"""`/admin/api`: organisations, their participant identifiers and registrations, bulk import (admin tokens: reads
need the `support` or `admin` scope, changes `admin`; `resync` is open to `support`).

Receiving is off for a new participant (it costs the customer); switching it on registers the participant in our
SMP, the SML and the Peppol Directory (accesspoint.flows.registrations). A remote failure does not fail the request:
the answer is the registration state, whose per-step status and error say what happened and what to do, and
`resync` repeats the steps. Errors of the request itself are problem documents (RFC 9457); invalid fields give
422 with `errors: [{field, message}]`. The request and response models are in accesspoint.web.schemas.admin.

    GET    /organisations[?org_number=&limit=&cursor=]      list, with participants
    POST   /organisations                                   {name, country, org_number?, vat_number?, contact_*?,
                                                             participants?: [{identifier, document_types?,
                                                             receiving?}]}
    GET    /organisations/{id}  PATCH (fields; the Directory re-reads the card)  DELETE [?force=true]
    GET    /organisations/{id}/participants   POST {identifier, document_types?, receiving?}
    GET    /participants?identifier=scheme::value
    GET    /participants/{id}   DELETE [?force=true]   (deregisters first; 409 while the SML still holds it)
    GET    /participants/{id}/document-types   PUT {document_types: [{document_type, process}]}
    POST   /participants/{id}/receiving {enabled}   GET .../registration   POST .../resync   POST .../migrate {key}
    POST   /imports[?dry_run=true]      CSV body (text/csv) or multipart field "file" -> per-row report
    GET    /sml   our SMP's SML record;   PUT /sml   register our SMP (logical address = gateway.smp_url)

Every change above writes one audit record in its transaction (store/audit.py); GET /audit lists them
(web/admin_audit.py).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accesspoint.flows import enrolment, registrations
from accesspoint.flows.enrolment import EnrolmentConflict, OrganisationNotFound, ParticipantSpec
from accesspoint.flows.importer import ImportFileError, run_import
from accesspoint.flows.organisations import FieldError
from accesspoint.flows.registrations import Registrar, RegistrationConfigError, RegistrationState
from accesspoint.gateway import Gateway
from accesspoint.store import audit
from accesspoint.store.audit import Actor, organisation_snapshot, participant_snapshot
from accesspoint.store.models import (
    Organisation,
    Participant,
    ParticipantDocumentType,
    RegistrationStatus,
)
from accesspoint.store.queries import find_participant
from accesspoint.web.apidoc import ADMIN, LOCATION_HEADER, int32_path_ids
from accesspoint.web.auth import admin_guard, current_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas import admin as api
from accesspoint.web.schemas.common import ListQuery
from smp.identifiers import IdentifierError, ParticipantId
from smp.sml import SmlError, SmlNotFound, migration_key_problem

PREFIX = "/admin/api"
# audit log actions of the routes below (those of creation, receiving, resync, migrate, SML and import: in their
# flows)
AUDIT_ORGANISATION_UPDATE = "organisation.update"
AUDIT_ORGANISATION_DELETE = "organisation.delete"
AUDIT_PARTICIPANT_DELETE = "participant.delete"
AUDIT_DOCUMENT_TYPES = "participant.document_types"
ORGANISATIONS = ("organisations",)
PARTICIPANTS = ("participants",)
REGISTRATION = ("registration",)

blueprint = Blueprint("admin_api", __name__, url_prefix=PREFIX)


# reads need the `support` scope, changes `admin`; support may also repeat a participant's registration steps
blueprint.before_request(admin_guard(support_actions={"admin_api.resync"}))


blueprint.before_request(int32_path_ids)


# --- request and response helpers ----------------------------------------------------------------------


def _actor() -> Actor:
    """The admin token of the request, as the audit log names it."""
    return Actor.of_client(current_client())


def _invalid(errors: list[FieldError]) -> ProblemError:
    return ProblemError(422, "Unprocessable Content", "; ".join(map(str, errors)),
                        errors=[e.to_dict() for e in errors])


def _organisation(session: Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id,
                               options=[selectinload(Organisation.participants)
                                        .selectinload(Participant.document_types)])
    if organisation is None:
        raise ProblemError(404, "Not Found", f"organisation {organisation_id} does not exist")
    return organisation


def _participant(session: Session, participant_id: int) -> Participant:
    participant = session.get(Participant, participant_id, options=[selectinload(Participant.document_types)])
    if participant is None:
        raise ProblemError(404, "Not Found", f"participant {participant_id} does not exist")
    return participant


def _document_types(participant: Participant) -> list[api.DocumentType]:
    return [api.DocumentType(document_type=d.document_type, process=d.process)
            for d in sorted(participant.document_types, key=lambda d: (d.document_type, d.process))]


def _registration(state: RegistrationState) -> api.Registration:
    return api.Registration.model_validate(state.to_dict())


def participant_json(participant: Participant) -> api.Participant:
    return api.Participant(id=participant.id, organisation_id=participant.organisation_id,
                           identifier=participant.uri, receiving_enabled=participant.receiving_enabled,
                           document_types=_document_types(participant),
                           registration=_registration(RegistrationState.of(participant)),
                           created_at=participant.created_at)


def organisation_json(organisation: Organisation) -> api.Organisation:
    return api.Organisation(
        id=organisation.id, name=organisation.name, country=organisation.country,
        org_number=organisation.org_number, vat_number=organisation.vat_number,
        contact_name=organisation.contact_name, contact_email=organisation.contact_email,
        contact_phone=organisation.contact_phone, validation_mode=organisation.validation_mode,
        participants=[participant_json(p) for p in sorted(organisation.participants, key=lambda p: p.id)],
        created_at=organisation.created_at, updated_at=organisation.updated_at)


def _spec(request: api.ParticipantRequest) -> ParticipantSpec:
    document_types = None if request.document_types is None else list(
        dict.fromkeys((d.document_type, d.process) for d in request.document_types))
    return ParticipantSpec(request.identifier, document_types, request.receiving)


def _conflict(exc: EnrolmentConflict, participant_field: str) -> ProblemError:
    """409 naming the field at fault; `participant_field` is formatted with the participant's index."""
    field = participant_field.format(exc.index) if exc.index is not None else exc.field
    extra = {} if exc.participant_id is None else {"participant_id": exc.participant_id}
    return ProblemError(409, "Conflict", f"{field}: {exc}" if field else str(exc), **extra)


def _deregister(gw: Gateway, participants: list[Participant]) -> list[RegistrationState]:
    """Switch receiving off where anything may still be registered; the states whose SML or Directory removal
    failed (the data must stay so the admin can retry)."""
    to_clear = [p.id for p in participants
                if p.receiving_enabled or p.sml_status != RegistrationStatus.UNREGISTERED
                or p.directory_status != RegistrationStatus.UNREGISTERED]
    failed = []
    with Registrar(gw) as registrar:
        for participant_id in to_clear:
            state = registrations.disable_receiving(gw, participant_id, registrar=registrar, actor=_actor())
            if RegistrationStatus.FAILED in (state.sml.status, state.directory.status):
                failed.append(state)
    return failed


def _deregistration_failed(failed: list[RegistrationState]) -> ProblemError:
    reasons = "; ".join(f"{s.identifier}: {s.sml.error or s.directory.error}" for s in failed)
    return ProblemError(409, "Still registered", f"receiving is off, but not everything could be removed, so "
                                                 f"nothing was deleted: {reasons}. Retry, or add ?force=true to "
                                                 "delete anyway.", registrations=[s.to_dict() for s in failed])


def _created(body: Any, endpoint: str, **values: int) -> ResponseReturnValue:
    return body, 201, {"Location": url_for(endpoint, **values)}


_CREATED = {"responses": {"201": {"headers": LOCATION_HEADER}}}


# --- organisations --------------------------------------------------------------------------------------


@blueprint.get("/organisations")
@ADMIN.operation("listOrganisations", tags=ORGANISATIONS, query=api.OrganisationQuery,
                 responses={200: api.OrganisationPage}, problems=(401, 403))
def list_organisations(query: api.OrganisationQuery) -> ResponseReturnValue:
    """Organisations with their participants, oldest first"""
    rows = select(Organisation).options(
        selectinload(Organisation.participants).selectinload(Participant.document_types))
    if query.org_number:
        rows = rows.where(Organisation.org_number == query.org_number.strip())
    with gateway().read() as session:
        organisations, next_page = fetch_page(session, rows, query, created=Organisation.created_at,
                                              key=Organisation.id, newest_first=False, key_type=int)
        items = [organisation_json(o) for o in organisations]
    return api.OrganisationPage(items=items, next=next_page), 200, link_header(next_page)


@blueprint.post("/organisations")
@ADMIN.operation("createOrganisation", tags=ORGANISATIONS, json=api.OrganisationRequest,
                 responses={201: api.Organisation}, problems=(401, 403, 409), extra=_CREATED)
def create_organisation(json: api.OrganisationRequest) -> ResponseReturnValue:
    """Create an organisation, optionally with its participants (those with `receiving` are registered)"""
    seen: dict[ParticipantId, int] = {}
    errors = []
    for index, spec in enumerate(json.participants):
        if spec.identifier in seen:
            errors.append(FieldError(f"participants[{index}].identifier",
                                     f"{spec.identifier.uri} is also participants[{seen[spec.identifier]}]"))
        seen.setdefault(spec.identifier, index)
    if errors:
        raise _invalid(errors)
    fields = json.model_dump(exclude={"participants"})
    gw = gateway()
    try:
        organisation_id = enrolment.create_organisation(gw, fields, [_spec(p) for p in json.participants], _actor())
    except EnrolmentConflict as exc:
        raise _conflict(exc, "participants[{}].identifier") from None
    with gw.read() as session:
        body = organisation_json(_organisation(session, organisation_id))
    return _created(body, ".get_organisation", organisation_id=organisation_id)


@blueprint.get("/organisations/<int:organisation_id>")
@ADMIN.operation("getOrganisation", tags=ORGANISATIONS, responses={200: api.Organisation}, problems=(401, 403, 404))
def get_organisation(organisation_id: int) -> ResponseReturnValue:
    """One organisation with its participants"""
    with gateway().read() as session:
        return organisation_json(_organisation(session, organisation_id))


@blueprint.patch("/organisations/<int:organisation_id>")
@ADMIN.operation("updateOrganisation", tags=ORGANISATIONS, json=api.OrganisationUpdate,
                 responses={200: api.Organisation}, problems=(401, 403, 404, 409))
def update_organisation(organisation_id: int, json: api.OrganisationUpdate) -> ResponseReturnValue:
    """Change an organisation's fields (those given)"""
    fields = json.model_dump(exclude_unset=True)
    gw = gateway()
    try:
        with gw.read() as session:
            organisation = _organisation(session, organisation_id)
            number = fields.get("org_number")
            if number and number != organisation.org_number and session.scalar(
                    select(Organisation.id).where(Organisation.org_number == number)) is not None:
                raise ProblemError(409, "Conflict", f"org_number: an organisation with number {number} exists already")
            before = organisation_snapshot(organisation)
            changed = False
            for name, value in fields.items():
                if getattr(organisation, name) != value:
                    setattr(organisation, name, value)
                    changed = True
            if changed:
                audit.record(session, _actor(), AUDIT_ORGANISATION_UPDATE, audit.ORGANISATION, organisation_id,
                             before=before, after=organisation_snapshot(organisation))
            listed = [p.id for p in organisation.participants if p.receiving_enabled]
    except IntegrityError:
        raise ProblemError(409, "Conflict", "the organisation was changed by someone else at the same moment; "
                                            "read it and try again") from None
    if changed:
        # the business card is built from these fields: the Directory re-reads it
        registrations.republish(gw, listed)
    with gw.read() as session:
        return organisation_json(_organisation(session, organisation_id))


@blueprint.delete("/organisations/<int:organisation_id>")
@ADMIN.operation("deleteOrganisation", tags=ORGANISATIONS, query=api.ForceQuery, responses={204: None},
                 problems=(401, 403, 404, 409), extra={"responses": {"204": {"description": "deleted"}}})
def delete_organisation(organisation_id: int, query: api.ForceQuery) -> ResponseReturnValue:
    """Delete an organisation: its participants are deregistered first (409 while that fails, unless `force`)"""
    gw = gateway()
    with gw.read() as session:
        participants = list(_organisation(session, organisation_id).participants)
    failed = _deregister(gw, participants)
    if failed and not query.force:
        raise _deregistration_failed(failed)
    with gw.read() as session:
        organisation = _organisation(session, organisation_id)
        audit.record(session, _actor(), AUDIT_ORGANISATION_DELETE, audit.ORGANISATION, organisation_id,
                     before=organisation_snapshot(organisation))
        session.delete(organisation)
    return "", 204


# --- participants ---------------------------------------------------------------------------------------


@blueprint.get("/organisations/<int:organisation_id>/participants")
@ADMIN.operation("listOrganisationParticipants", tags=PARTICIPANTS, query=ListQuery,
                 responses={200: api.ParticipantPage}, problems=(401, 403, 404))
def list_organisation_participants(organisation_id: int, query: ListQuery) -> ResponseReturnValue:
    """The participants of an organisation, oldest first"""
    rows = (select(Participant).where(Participant.organisation_id == organisation_id)
            .options(selectinload(Participant.document_types)))
    with gateway().read() as session:
        _organisation(session, organisation_id)
        participants, next_page = fetch_page(session, rows, query, created=Participant.created_at,
                                             key=Participant.id, newest_first=False, key_type=int)
        items = [participant_json(p) for p in participants]
    return api.ParticipantPage(items=items, next=next_page), 200, link_header(next_page)


@blueprint.post("/organisations/<int:organisation_id>/participants")
@ADMIN.operation("createParticipant", tags=PARTICIPANTS, json=api.ParticipantRequest,
                 responses={201: api.Participant}, problems=(401, 403, 404, 409), extra=_CREATED)
def create_participant(organisation_id: int, json: api.ParticipantRequest) -> ResponseReturnValue:
    """Add a participant identifier to an organisation (registered when `receiving` is true)"""
    gw = gateway()
    try:
        participant_id = enrolment.add_participant(gw, organisation_id, _spec(json), _actor())
    except OrganisationNotFound as exc:
        raise ProblemError(404, "Not Found", str(exc)) from None
    except EnrolmentConflict as exc:
        raise _conflict(exc, "identifier") from None
    with gw.read() as session:
        body = participant_json(_participant(session, participant_id))
    return _created(body, ".get_participant", participant_id=participant_id)


@blueprint.get("/participants")
@ADMIN.operation("findParticipants", tags=PARTICIPANTS, query=api.ParticipantQuery,
                 responses={200: api.ParticipantPage}, problems=(401, 403))
def find_participants(query: api.ParticipantQuery) -> ResponseReturnValue:
    """Look a participant up by its identifier (a page of at most one)"""
    try:
        identifier = ParticipantId.parse(query.identifier, strict=False)
    except IdentifierError as exc:
        raise ProblemError(400, "Bad Request", f"identifier: {exc}", parameter="identifier",
                           errors=[{"field": "identifier", "message": str(exc)}]) from None
    with gateway().read() as session:
        found = find_participant(session, identifier.scheme, identifier.value)
        return api.ParticipantPage(items=[participant_json(found)] if found is not None else [], next=None)


@blueprint.get("/participants/<int:participant_id>")
@ADMIN.operation("getParticipant", tags=PARTICIPANTS, responses={200: api.Participant}, problems=(401, 403, 404))
def get_participant(participant_id: int) -> ResponseReturnValue:
    """One participant with its document types and registration"""
    with gateway().read() as session:
        return participant_json(_participant(session, participant_id))


@blueprint.delete("/participants/<int:participant_id>")
@ADMIN.operation("deleteParticipant", tags=PARTICIPANTS, query=api.ForceQuery, responses={204: None},
                 problems=(401, 403, 404, 409), extra={"responses": {"204": {"description": "deleted"}}})
def delete_participant(participant_id: int, query: api.ForceQuery) -> ResponseReturnValue:
    """Delete a participant: deregistered first (409 while the SML still holds it, unless `force`)"""
    gw = gateway()
    with gw.read() as session:
        participant = _participant(session, participant_id)
    failed = _deregister(gw, [participant])
    if failed and not query.force:
        raise _deregistration_failed(failed)
    with gw.read() as session:
        participant = _participant(session, participant_id)
        audit.record(session, _actor(), AUDIT_PARTICIPANT_DELETE, audit.PARTICIPANT, participant_id,
                     before=participant_snapshot(participant))
        session.delete(participant)
    return "", 204


def _document_types_of(participant_id: int) -> api.DocumentTypes:
    with gateway().read() as session:
        return api.DocumentTypes(document_types=_document_types(_participant(session, participant_id)))


@blueprint.get("/participants/<int:participant_id>/document-types")
@ADMIN.operation("getDocumentTypes", tags=PARTICIPANTS, responses={200: api.DocumentTypes},
                 problems=(401, 403, 404))
def get_document_types(participant_id: int) -> ResponseReturnValue:
    """The document types + processes the participant receives (what our SMP publishes)"""
    return _document_types_of(participant_id)


@blueprint.put("/participants/<int:participant_id>/document-types")
@ADMIN.operation("putDocumentTypes", tags=PARTICIPANTS, json=api.DocumentTypes, responses={200: api.DocumentTypes},
                 problems=(401, 403, 404))
def put_document_types(participant_id: int, json: api.DocumentTypes) -> ResponseReturnValue:
    """Replace the document types + processes the participant receives (what our SMP publishes)"""
    wanted = list(dict.fromkeys((d.document_type, d.process) for d in json.document_types))
    gw = gateway()
    with gw.read() as session:
        participant = _participant(session, participant_id)
        before = participant_snapshot(participant)
        have = {(d.document_type, d.process): d for d in participant.document_types}
        for key, entry in have.items():
            if key not in wanted:
                participant.document_types.remove(entry)
        for document_type, process in wanted:
            if (document_type, process) not in have:
                participant.document_types.append(ParticipantDocumentType(document_type=document_type,
                                                                          process=process))
        changed = set(have) != set(wanted)
        listed = participant.receiving_enabled
        if changed:
            audit.record(session, _actor(), AUDIT_DOCUMENT_TYPES, audit.PARTICIPANT, participant_id, before=before,
                         after=participant_snapshot(participant))
    if changed and listed:
        registrations.republish(gw, [participant_id])
    return _document_types_of(participant_id)


def _registration_call(action: Any, participant_id: int, *args: Any, **kwargs: Any) -> api.Registration:
    try:
        return _registration(action(gateway(), participant_id, *args, **kwargs))
    except registrations.ParticipantNotFound as exc:
        raise ProblemError(404, "Not Found", str(exc)) from None


@blueprint.post("/participants/<int:participant_id>/receiving")
@ADMIN.operation("setReceiving", tags=REGISTRATION, json=api.Receiving, responses={200: api.Registration},
                 problems=(401, 403, 404))
def set_receiving(participant_id: int, json: api.Receiving) -> ResponseReturnValue:
    """Switch receiving on (registers in our SMP, the SML and the Directory) or off (unregisters)"""
    action = registrations.enable_receiving if json.enabled else registrations.disable_receiving
    return _registration_call(action, participant_id, actor=_actor())


@blueprint.get("/participants/<int:participant_id>/registration")
@ADMIN.operation("getRegistration", tags=REGISTRATION, responses={200: api.Registration}, problems=(401, 403, 404))
def get_registration(participant_id: int) -> ResponseReturnValue:
    """Where the participant is registered, step by step"""
    return _registration_call(registrations.state, participant_id)


@blueprint.post("/participants/<int:participant_id>/resync")
@ADMIN.operation("resync", tags=REGISTRATION, responses={200: api.Registration}, problems=(401, 403, 404))
def resync(participant_id: int) -> ResponseReturnValue:
    """Repeat the registration steps (after a remote failure)"""
    return _registration_call(registrations.resync, participant_id, actor=_actor())


@blueprint.post("/participants/<int:participant_id>/migrate")
@ADMIN.operation("migrate", tags=REGISTRATION, json=api.MigrationKey, responses={200: api.Registration},
                 problems=(401, 403, 404))
def migrate(participant_id: int, json: api.MigrationKey) -> ResponseReturnValue:
    """Move a participant another provider registered to us, with the migration key the customer got there"""
    key = json.key.strip()
    if (problem := migration_key_problem(key)) is not None:
        raise _invalid([FieldError("key", f"is not a migration key the SML accepts: it {problem}")])
    return _registration_call(registrations.migrate_in, participant_id, key, actor=_actor())


# --- bulk import ------------------------------------------------------------------------------------------


def _csv_lines() -> Iterator[str]:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ProblemError(400, "Bad Request", "send the CSV as the form field 'file'", parameter="file")
        return text_lines(upload.stream)
    return text_lines(request.stream)


def text_lines(stream: Any, chunk_size: int = 65536) -> Iterator[str]:
    """UTF-8 lines (endings kept, as the csv module wants them) from a binary stream, read piece by piece.

    utf-8-sig: spreadsheet programs write a byte order mark. Only "\n" ends a line here; the csv module
    handles "\r\n" and line breaks inside quoted fields itself.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    while chunk := stream.read(chunk_size):
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


_CSV_EXAMPLE = "org_number,name,country,participant,receive\n5567321707,Acme AB,SE,0007:5567321707,yes\n"
_IMPORT_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}},
                            "example": {"file": _CSV_EXAMPLE}},
}}}


@blueprint.post("/imports")
@ADMIN.operation("importRegister", tags=ORGANISATIONS, query=api.ImportQuery, responses={200: api.ImportReport},
                 problems=(401, 403, 422), extra=_IMPORT_BODY)
def import_register(query: api.ImportQuery) -> ResponseReturnValue:
    """Import a CSV customer register (one row per participant); answers the per-row report

    Columns: org_number, name, country, participant (required), vat_number, contact_name, contact_email,
    contact_phone, receive. Rows of one org_number are one organisation; importing again changes only what
    differs.
    """
    try:
        report = run_import(gateway(), _csv_lines(), actor=_actor(), dry_run=query.dry_run)
    except ImportFileError as exc:
        raise ProblemError(422, "Invalid file", str(exc)) from None
    except UnicodeDecodeError:
        raise ProblemError(422, "Invalid file", "the file is not UTF-8 text: save the CSV as UTF-8 and import it "
                                                "again (rows before the bad bytes may have been imported; importing "
                                                "them again is harmless)") from None
    return api.ImportReport.model_validate(report.to_dict())


# --- our SMP in the SML ----------------------------------------------------------------------------------


def _smp_call(register: bool) -> api.SmlRecord:
    gw = gateway()
    try:
        with Registrar(gw) as registrar:
            record = registrations.register_smp(gw, registrar, _actor()) if register else registrar.read_smp()
    except RegistrationConfigError as exc:
        raise ProblemError(409, "SML not configured", str(exc)) from None
    except SmlError as exc:
        status = 404 if isinstance(exc, SmlNotFound) else 502
        raise ProblemError(status, "SML error", exc.message, sml_detail=exc.detail or None) from None
    return api.SmlRecord(smp_id=record.smp_id, logical_address=record.logical_address,
                         physical_address=record.physical_address, expected_logical_address=gw.smp_url)


@blueprint.get("/sml")
@ADMIN.operation("getSml", tags=("sml",), responses={200: api.SmlRecord}, problems=(401, 403, 404, 409, 502))
def read_sml() -> ResponseReturnValue:
    """Our SMP's registration in the SML (SMP ID, logical address = where NAPTR records point)"""
    return _smp_call(register=False)


@blueprint.put("/sml")
@ADMIN.operation("registerSml", tags=("sml",), responses={200: api.SmlRecord}, problems=(401, 403, 404, 409, 502))
def register_sml() -> ResponseReturnValue:
    """Register our SMP in the SML at gateway.smp_url, or correct the address; needed once before participants"""
    return _smp_call(register=True)
