"""`/admin/api`: organisations, their participant identifiers and registrations, bulk import (admin tokens: reads
need the `support` or `admin` scope, changes `admin`; `resync` is open to `support`).

Receiving is off for a new participant (it costs the customer); switching it on registers the participant in our
SMP, the SML and the Peppol Directory (accesspoint.flows.registrations). A remote failure does not fail the request:
the answer is the registration state, whose per-step status and error say what happened and what to do, and
`resync` repeats the steps. Errors of the request itself are problem documents (RFC 9457); invalid fields give
422 with `errors: [{field, message}]`.

    GET    /organisations[?org_number=&limit=&offset=]      list, with participants
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

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accesspoint.flows import enrolment, registrations
from accesspoint.flows.enrolment import EnrolmentConflict, OrganisationNotFound, ParticipantSpec
from accesspoint.flows.importer import ImportFileError, run_import
from accesspoint.flows.organisations import (
    ORGANISATION_FIELDS,
    FieldError,
    clean_organisation,
    parse_document_types,
    parse_participant,
)
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
from accesspoint.web.auth import admin_guard, current_client
from accesspoint.web.context import gateway
from accesspoint.web.problems import ProblemError
from smp.identifiers import ParticipantId
from smp.sml import SmlError, SmlNotFound, migration_key_problem

PREFIX = "/admin/api"
MAX_PAGE = 1000
# audit log actions of the routes below (those of creation, receiving, resync, migrate, SML and import: in their
# flows)
AUDIT_ORGANISATION_UPDATE = "organisation.update"
AUDIT_ORGANISATION_DELETE = "organisation.delete"
AUDIT_PARTICIPANT_DELETE = "participant.delete"
AUDIT_DOCUMENT_TYPES = "participant.document_types"

blueprint = Blueprint("admin_api", __name__, url_prefix=PREFIX)


# reads need the `support` scope, changes `admin`; support may also repeat a participant's registration steps
blueprint.before_request(admin_guard(support_actions={"admin_api.resync"}))


# --- request and response helpers ----------------------------------------------------------------------


def _actor() -> Actor:
    """The admin token of the request, as the audit log names it."""
    return Actor.of_client(current_client())


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ProblemError(400, "Bad Request", "send a JSON object with Content-Type: application/json")
    return data


def _invalid(errors: list[FieldError]) -> ProblemError:
    return ProblemError(422, "Invalid request", "; ".join(map(str, errors)), errors=[e.to_dict() for e in errors])


def _unknown_fields(data: dict[str, Any], allowed: set[str], prefix: str = "") -> list[FieldError]:
    return [FieldError(prefix + key, f"is not a known field (known: {', '.join(sorted(allowed))})")
            for key in data if key not in allowed]


def _bool(data: dict[str, Any], key: str, errors: list[FieldError], where: str | None = None) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    errors.append(FieldError(where or key, "must be true or false"))
    return None


def _page() -> tuple[int, int]:
    try:
        limit = int(request.args.get("limit", 100))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise ProblemError(400, "Bad Request", "limit and offset must be whole numbers") from None
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ProblemError(400, "Bad Request", f"limit must be 1-{MAX_PAGE} and offset 0 or more")
    return limit, offset


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


def participant_json(participant: Participant) -> dict[str, Any]:
    return {
        "id": participant.id,
        "organisation_id": participant.organisation_id,
        "identifier": participant.uri,
        "receiving_enabled": participant.receiving_enabled,
        "document_types": [{"document_type": d.document_type, "process": d.process}
                           for d in sorted(participant.document_types, key=lambda d: (d.document_type, d.process))],
        "registration": RegistrationState.of(participant).to_dict(),
        "created_at": participant.created_at.isoformat(),
    }


def organisation_json(organisation: Organisation) -> dict[str, Any]:
    body: dict[str, Any] = {"id": organisation.id}
    body.update({name: getattr(organisation, name) for name in ORGANISATION_FIELDS})
    body["participants"] = [participant_json(p) for p in sorted(organisation.participants, key=lambda p: p.id)]
    body["created_at"] = organisation.created_at.isoformat()
    body["updated_at"] = organisation.updated_at.isoformat()
    return body


# --- participant specifications in requests ------------------------------------------------------------

_PARTICIPANT_FIELDS = {"identifier", "document_types", "receiving"}


def _participant_spec(item: Any, prefix: str, errors: list[FieldError]) -> ParticipantSpec | None:
    if not isinstance(item, dict):
        errors.append(FieldError(prefix.rstrip("."), "must be an object with identifier, document_types, receiving"))
        return None
    before = len(errors)
    errors.extend(_unknown_fields(item, _PARTICIPANT_FIELDS, prefix))
    identifier, problem = parse_participant(item.get("identifier"), prefix + "identifier")
    if problem is not None:
        errors.append(problem)
    document_types = None
    if "document_types" in item:
        document_types, problems = parse_document_types(item["document_types"], prefix + "document_types")
        errors.extend(problems)
    receiving = _bool(item, "receiving", errors, prefix + "receiving")
    if len(errors) > before or identifier is None:
        return None
    return ParticipantSpec(identifier, document_types, bool(receiving))


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


# --- organisations --------------------------------------------------------------------------------------


@blueprint.get("/organisations")
def list_organisations() -> Response:
    limit, offset = _page()
    query = select(Organisation)
    org_number = request.args.get("org_number")
    if org_number:
        query = query.where(Organisation.org_number == org_number.strip())
    with gateway().read() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        items = session.scalars(query.order_by(Organisation.id).limit(limit).offset(offset).options(
            selectinload(Organisation.participants).selectinload(Participant.document_types)))
        return jsonify(items=[organisation_json(o) for o in items], total=total, limit=limit, offset=offset)


@blueprint.post("/organisations")
def create_organisation() -> tuple[Response, int, dict[str, str]]:
    data = _json_object()
    errors = _unknown_fields(data, set(ORGANISATION_FIELDS) | {"participants"})
    fields, problems = clean_organisation(data)
    errors.extend(problems)
    specs = []
    items = data.get("participants", [])
    if not isinstance(items, list):
        errors.append(FieldError("participants", "must be a list"))
        items = []
    for index, item in enumerate(items):
        spec = _participant_spec(item, f"participants[{index}].", errors)
        if spec is not None:
            specs.append((index, spec))
    seen: dict[ParticipantId, int] = {}
    for index, spec in specs:
        if spec.identifier in seen:
            errors.append(FieldError(f"participants[{index}].identifier",
                                     f"{spec.identifier.uri} is also participants[{seen[spec.identifier]}]"))
        seen.setdefault(spec.identifier, index)
    if errors:
        raise _invalid(errors)
    gw = gateway()
    try:
        organisation_id = enrolment.create_organisation(gw, fields, [spec for _, spec in specs], _actor())
    except EnrolmentConflict as exc:
        raise _conflict(exc, "participants[{}].identifier") from None
    with gw.read() as session:
        body = organisation_json(_organisation(session, organisation_id))
    return jsonify(body), 201, {"Location": url_for(".get_organisation", organisation_id=organisation_id)}


@blueprint.get("/organisations/<int:organisation_id>")
def get_organisation(organisation_id: int) -> Response:
    with gateway().read() as session:
        return jsonify(organisation_json(_organisation(session, organisation_id)))


@blueprint.patch("/organisations/<int:organisation_id>")
def update_organisation(organisation_id: int) -> Response:
    data = _json_object()
    errors = _unknown_fields(data, set(ORGANISATION_FIELDS))
    fields, problems = clean_organisation(data, partial=True)
    errors.extend(problems)
    if errors:
        raise _invalid(errors)
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
        return jsonify(organisation_json(_organisation(session, organisation_id)))


@blueprint.delete("/organisations/<int:organisation_id>")
def delete_organisation(organisation_id: int) -> tuple[str, int]:
    gw = gateway()
    with gw.read() as session:
        participants = list(_organisation(session, organisation_id).participants)
    failed = _deregister(gw, participants)
    if failed and request.args.get("force") != "true":
        raise _deregistration_failed(failed)
    with gw.read() as session:
        organisation = _organisation(session, organisation_id)
        audit.record(session, _actor(), AUDIT_ORGANISATION_DELETE, audit.ORGANISATION, organisation_id,
                     before=organisation_snapshot(organisation))
        session.delete(organisation)
    return "", 204


# --- participants ---------------------------------------------------------------------------------------


@blueprint.get("/organisations/<int:organisation_id>/participants")
def list_organisation_participants(organisation_id: int) -> Response:
    with gateway().read() as session:
        organisation = _organisation(session, organisation_id)
        return jsonify(items=[participant_json(p) for p in sorted(organisation.participants, key=lambda p: p.id)])


@blueprint.post("/organisations/<int:organisation_id>/participants")
def create_participant(organisation_id: int) -> tuple[Response, int, dict[str, str]]:
    errors: list[FieldError] = []
    spec = _participant_spec(_json_object(), "", errors)
    if errors or spec is None:
        raise _invalid(errors)
    gw = gateway()
    try:
        participant_id = enrolment.add_participant(gw, organisation_id, spec, _actor())
    except OrganisationNotFound as exc:
        raise ProblemError(404, "Not Found", str(exc)) from None
    except EnrolmentConflict as exc:
        raise _conflict(exc, "identifier") from None
    with gw.read() as session:
        body = participant_json(_participant(session, participant_id))
    return jsonify(body), 201, {"Location": url_for(".get_participant", participant_id=participant_id)}


@blueprint.get("/participants")
def find_participants() -> Response:
    text = request.args.get("identifier")
    if not text:
        raise ProblemError(400, "Bad Request", "give ?identifier=scheme::value (or ICD:id) to look a participant up")
    try:
        identifier = ParticipantId.parse(text, strict=False)
    except ValueError as exc:
        raise _invalid([FieldError("identifier", str(exc))]) from None
    with gateway().read() as session:
        found = find_participant(session, identifier.scheme, identifier.value)
        return jsonify(items=[participant_json(found)] if found is not None else [])


@blueprint.get("/participants/<int:participant_id>")
def get_participant(participant_id: int) -> Response:
    with gateway().read() as session:
        return jsonify(participant_json(_participant(session, participant_id)))


@blueprint.delete("/participants/<int:participant_id>")
def delete_participant(participant_id: int) -> tuple[str, int]:
    gw = gateway()
    with gw.read() as session:
        participant = _participant(session, participant_id)
    failed = _deregister(gw, [participant])
    if failed and request.args.get("force") != "true":
        raise _deregistration_failed(failed)
    with gw.read() as session:
        participant = _participant(session, participant_id)
        audit.record(session, _actor(), AUDIT_PARTICIPANT_DELETE, audit.PARTICIPANT, participant_id,
                     before=participant_snapshot(participant))
        session.delete(participant)
    return "", 204


@blueprint.get("/participants/<int:participant_id>/document-types")
def get_document_types(participant_id: int) -> Response:
    with gateway().read() as session:
        return jsonify(document_types=participant_json(_participant(session, participant_id))["document_types"])


@blueprint.put("/participants/<int:participant_id>/document-types")
def put_document_types(participant_id: int) -> Response:
    """Replace the document types + processes the participant receives (what our SMP publishes)."""
    data = _json_object()
    errors = _unknown_fields(data, {"document_types"})
    if "document_types" not in data:
        errors.append(FieldError("document_types", "is required: a list of {document_type, process}"))
    wanted, problems = parse_document_types(data.get("document_types", []))
    errors.extend(problems)
    if errors:
        raise _invalid(errors)
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
    return get_document_types(participant_id)


def _state_response(state: RegistrationState) -> Response:
    return jsonify(state.to_dict())


def _registration_call(action: Any, participant_id: int, *args: Any, **kwargs: Any) -> Response:
    try:
        return _state_response(action(gateway(), participant_id, *args, **kwargs))
    except registrations.ParticipantNotFound as exc:
        raise ProblemError(404, "Not Found", str(exc)) from None


@blueprint.post("/participants/<int:participant_id>/receiving")
def set_receiving(participant_id: int) -> Response:
    data = _json_object()
    errors = _unknown_fields(data, {"enabled"})
    enabled = _bool(data, "enabled", errors)
    if enabled is None and not errors:
        errors.append(FieldError("enabled", "is required: true to receive (registers), false to stop (unregisters)"))
    if errors:
        raise _invalid(errors)
    action = registrations.enable_receiving if enabled else registrations.disable_receiving
    return _registration_call(action, participant_id, actor=_actor())


@blueprint.get("/participants/<int:participant_id>/registration")
def get_registration(participant_id: int) -> Response:
    return _registration_call(registrations.state, participant_id)


@blueprint.post("/participants/<int:participant_id>/resync")
def resync(participant_id: int) -> Response:
    return _registration_call(registrations.resync, participant_id, actor=_actor())


@blueprint.post("/participants/<int:participant_id>/migrate")
def migrate(participant_id: int) -> Response:
    """Move a participant another provider registered to us, with the migration key the customer got there."""
    data = _json_object()
    errors = _unknown_fields(data, {"key"})
    key = data.get("key")
    if not isinstance(key, str) or not key.strip():
        errors.append(FieldError("key", "is required: the migration key the current provider gave the customer"))
    elif (problem := migration_key_problem(key.strip())) is not None:
        errors.append(FieldError("key", f"is not a migration key the SML accepts: it {problem}"))
    if errors:
        raise _invalid(errors)
    return _registration_call(registrations.migrate_in, participant_id, key, actor=_actor())


# --- bulk import ------------------------------------------------------------------------------------------


def _csv_lines() -> Iterator[str]:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ProblemError(400, "Bad Request", "send the CSV as the form field 'file'")
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


@blueprint.post("/imports")
def import_register() -> Response:
    """Import a CSV customer register (columns in accesspoint.flows.importer); answers the per-row report."""
    dry_run = request.args.get("dry_run", "false").lower() in ("true", "1", "yes")
    try:
        report = run_import(gateway(), _csv_lines(), actor=_actor(), dry_run=dry_run)
    except ImportFileError as exc:
        raise ProblemError(422, "Invalid file", str(exc)) from None
    except UnicodeDecodeError:
        raise ProblemError(422, "Invalid file", "the file is not UTF-8 text: save the CSV as UTF-8 and import it "
                                                "again (rows before the bad bytes may have been imported; importing "
                                                "them again is harmless)") from None
    return jsonify(report.to_dict())


# --- our SMP in the SML ----------------------------------------------------------------------------------


def _smp_call(register: bool) -> Response:
    gw = gateway()
    try:
        with Registrar(gw) as registrar:
            record = registrations.register_smp(gw, registrar, _actor()) if register else registrar.read_smp()
    except RegistrationConfigError as exc:
        raise ProblemError(409, "SML not configured", str(exc)) from None
    except SmlError as exc:
        status = 404 if isinstance(exc, SmlNotFound) else 502
        raise ProblemError(status, "SML error", exc.message, sml_detail=exc.detail or None) from None
    return jsonify(smp_id=record.smp_id, logical_address=record.logical_address,
                   physical_address=record.physical_address, expected_logical_address=gw.smp_url)


@blueprint.get("/sml")
def read_sml() -> Response:
    """Our SMP's registration in the SML (SMP ID, logical address = where NAPTR records point)."""
    return _smp_call(register=False)


@blueprint.put("/sml")
def register_sml() -> Response:
    """Register our SMP in the SML at gateway.smp_url, or correct the address; needed once before participants."""
    return _smp_call(register=True)
