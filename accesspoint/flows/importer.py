"""Bulk import of a customer register: a CSV of organisations and their participant identifiers.

Columns (header row required, names case-insensitive, order free):

    org_number     required  the organisation's registration number; rows with the same number are one organisation
    name           required  legal name (published in the Peppol Directory)
    country        required  ISO 3166 alpha-2 code, e.g. SE
    participant    required  Peppol participant identifier, `0007:5567321707` or `iso6523-actorid-upis::0007:...`
                             (strict Peppol rules: known ICD, 0007 Luhn and 0088 GS1 check digits)
    receive        optional  yes/no (default no): enable receiving, which registers the participant in the SML
    vat_number, contact_name, contact_email, contact_phone   optional

Every row gets a result: `registered`, `registered-elsewhere` (another provider holds it in the SML; a migration
key is needed), `created` (stored, receiving off), `unchanged` (already imported), `failed` (the SML or our SMP
did not take it; the message says why) or `invalid` (the message says which field and why); a dry run answers
`valid` instead of doing anything. Importing the same file again is harmless: existing participants are
`unchanged`, and a receiving participant is never switched off by an import (do that over the admin API).

The file is read as a stream in batches: one transaction stores a batch, then its SML registrations run a few at
a time (registrations.enable_many), so a 10,000-row register does not sit in memory or in one transaction.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accesspoint.flows.organisations import FieldError, clean_organisation, parse_participant
from accesspoint.flows.registrations import Registrar, RegistrationState, enable_many, republish
from accesspoint.gateway import Gateway
from accesspoint.store import audit
from accesspoint.store.audit import Actor
from accesspoint.store.models import Organisation, Participant, RegistrationStatus
from smp.identifiers import ParticipantId

COLUMNS = ("org_number", "name", "country", "vat_number", "contact_name", "contact_email", "contact_phone",
           "participant", "receive")
REQUIRED_COLUMNS = ("org_number", "name", "country", "participant")
_YES = {"yes", "y", "true", "1", "ja", "x"}
_NO = {"no", "n", "false", "0", "nej", ""}
BATCH_SIZE = 500
WORKERS = 8
# the audit log action of one stored batch (a dry run stores nothing and records nothing)
AUDIT_IMPORT = "participants.import"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (no header, unknown or missing columns)."""


class Outcome(StrEnum):
    REGISTERED = "registered"
    REGISTERED_ELSEWHERE = "registered-elsewhere"
    CREATED = "created"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    INVALID = "invalid"
    VALID = "valid"


DRY_RUN_OUTCOMES = (Outcome.VALID, Outcome.UNCHANGED, Outcome.INVALID)


@dataclass(frozen=True)
class RowResult:
    line: int
    outcome: Outcome
    participant: str | None = None
    org_number: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "outcome": str(self.outcome), "participant": self.participant,
                "org_number": self.org_number, "message": self.message}


@dataclass(frozen=True)
class ImportRow:
    """A row whose fields are valid on their own."""

    line: int
    organisation: dict[str, str | None]
    participant: ParticipantId
    receive: bool

    @property
    def org_number(self) -> str:
        return self.organisation["org_number"] or ""


@dataclass
class ImportReport:
    dry_run: bool
    results: list[RowResult] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        possible = DRY_RUN_OUTCOMES if self.dry_run else [o for o in Outcome if o != Outcome.VALID]
        counts = {str(o): 0 for o in possible}
        for result in self.results:
            counts[str(result.outcome)] = counts.get(str(result.outcome), 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "rows": len(self.results), "seconds": round(self.seconds, 3),
                "counts": self.counts(), "results": [r.to_dict() for r in self.results]}


# --- reading and validating (no database) ----------------------------------------------------------------


def _header(fields: list[str] | None) -> list[str]:
    if not fields:
        raise ImportFileError("the file is empty: expected a header row naming the columns "
                              f"({', '.join(COLUMNS)})")
    names = [(name or "").strip().lower() for name in fields]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise ImportFileError(f"unknown column(s) {', '.join(repr(n) for n in unknown)} in the header; "
                              f"the columns are {', '.join(COLUMNS)}")
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    if missing:
        raise ImportFileError(f"the header lacks the required column(s) {', '.join(missing)}")
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ImportFileError(f"column(s) {', '.join(doubled)} appear more than once in the header")
    return names


def _receive(value: str) -> bool | None:
    text = value.strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    return None


def read_rows(lines: Iterable[str]) -> Iterator[ImportRow | RowResult]:
    """Parse and validate a CSV (an iterable of text lines, header first) row by row.

    Yields an ImportRow for each row that is valid on its own and within the file, or an `invalid` RowResult
    saying why not. Checks against the database (who owns an identifier already) come later.
    """
    reader = csv.reader(lines)
    names = _header(next(reader, None))
    first_for_participant: dict[ParticipantId, int] = {}
    first_for_organisation: dict[str, tuple[int, str, str]] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        raw = dict(zip(names, values, strict=False))
        participant_text = (raw.get("participant") or "").strip() or None
        org_number = (raw.get("org_number") or "").strip() or None
        if len(values) != len(names):
            yield RowResult(line, Outcome.INVALID, participant_text, org_number,
                            f"the row has {len(values)} fields, the header has {len(names)}")
            continue
        organisation, errors = clean_organisation(raw)
        participant, problem = parse_participant(raw.get("participant"), "participant")
        if problem is not None:
            errors.append(problem)
        receive = _receive(raw.get("receive", ""))
        if receive is None:
            errors.append(FieldError("receive", f"{raw['receive']!r} is neither yes nor no"))
        if organisation.get("org_number") is None and not any(e.field == "org_number" for e in errors):
            errors.append(FieldError("org_number", "is required: it tells which rows belong to one organisation"))
        if errors:
            yield RowResult(line, Outcome.INVALID, participant_text, org_number, "; ".join(map(str, errors)))
            continue
        assert participant is not None and receive is not None
        org_number = organisation["org_number"] or ""
        earlier = first_for_participant.get(participant)
        if earlier is not None:
            yield RowResult(line, Outcome.INVALID, participant.uri, org_number,
                            f"participant: {participant.uri} is already on line {earlier}")
            continue
        name, country = organisation["name"] or "", organisation["country"] or ""
        seen = first_for_organisation.setdefault(org_number, (line, name, country))
        if seen[1:] != (name, country):
            yield RowResult(line, Outcome.INVALID, participant.uri, org_number,
                            f"organisation {org_number} is {seen[1]!r} in {seen[2]} on line {seen[0]}, but "
                            f"{name!r} in {country} here; one organisation, one name and country")
            continue
        first_for_participant[participant] = line
        yield ImportRow(line, organisation, participant, receive)


# --- applying (database, SML, Directory) -----------------------------------------------------------------


def run_import(gateway: Gateway, lines: Iterable[str], *, actor: Actor, dry_run: bool = False,
               batch_size: int = BATCH_SIZE, workers: int = WORKERS,
               progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import a CSV register (see the module docstring); ImportFileError when the header is unusable.
    `progress(n)` is called after every batch with the number of rows it handled. Each stored batch writes one
    audit record for `actor` (target: this import's id), each receiving switched on one more."""
    started = time.perf_counter()
    import_id = uuid.uuid4().hex
    report = ImportReport(dry_run)
    rows = read_rows(lines)
    with Registrar(gateway) as registrar:
        while batch := list(islice(rows, batch_size)):
            valid = [r for r in batch if isinstance(r, ImportRow)]
            decided: dict[int, RowResult] = {r.line: r for r in batch if isinstance(r, RowResult)}
            if dry_run:
                decided.update(_check_batch(gateway, valid))
            else:
                decided.update(_apply_batch(gateway, registrar, valid, workers, actor, import_id))
            report.results.extend(decided[line] for line in sorted(decided))
            if progress is not None:
                progress(len(batch))
    report.seconds = time.perf_counter() - started
    return report


def _existing(session: Session,
              rows: list[ImportRow]) -> tuple[dict[str, Organisation], dict[ParticipantId, Participant]]:
    org_numbers = {r.org_number for r in rows}
    organisations = {
        o.org_number or "": o
        for o in session.scalars(select(Organisation).where(Organisation.org_number.in_(org_numbers)))
    } if org_numbers else {}
    keys = {(r.participant.scheme, r.participant.value.lower()) for r in rows}
    participants: dict[ParticipantId, Participant] = {}
    if keys:
        query = (select(Participant).options(selectinload(Participant.organisation))
                 .where(tuple_(Participant.scheme, Participant.value_key).in_(keys)))
        for p in session.scalars(query):
            participants[ParticipantId(p.scheme, p.value)] = p
    return organisations, participants


def _owned_elsewhere(row: ImportRow, participant: Participant) -> RowResult | None:
    owner = participant.organisation
    if owner.org_number == row.org_number:
        return None
    return RowResult(row.line, Outcome.INVALID, row.participant.uri, row.org_number,
                     f"participant: {row.participant.uri} already belongs to organisation {owner.name!r} "
                     f"(org number {owner.org_number or 'none'}, id {owner.id})")


def _check_batch(gateway: Gateway, rows: list[ImportRow]) -> dict[int, RowResult]:
    results: dict[int, RowResult] = {}
    with gateway.read() as session:
        _, participants = _existing(session, rows)
        for row in rows:
            existing = participants.get(row.participant)
            if existing is not None:
                results[row.line] = _owned_elsewhere(row, existing) or RowResult(
                    row.line, Outcome.UNCHANGED, row.participant.uri, row.org_number, "already imported")
            else:
                what = "would be created and registered" if row.receive else "would be created, receiving off"
                results[row.line] = RowResult(row.line, Outcome.VALID, row.participant.uri, row.org_number, what)
    return results


def _apply_batch(gateway: Gateway, registrar: Registrar, rows: list[ImportRow], workers: int, actor: Actor,
                 import_id: str) -> dict[int, RowResult]:
    results: dict[int, RowResult] = {}
    to_enable: dict[int, ImportRow] = {}
    changed_organisations: set[int] = set()
    created_organisations: list[Organisation] = []
    created_participants: list[str] = []
    try:
        with gateway.write() as session:
            organisations, participants = _existing(session, rows)
            for row in rows:
                existing = participants.get(row.participant)
                conflict = _owned_elsewhere(row, existing) if existing is not None else None
                if conflict is not None:
                    results[row.line] = conflict
                    continue
                organisation = organisations.get(row.org_number)
                if organisation is None:
                    organisation = Organisation(**row.organisation)
                    session.add(organisation)
                    organisations[row.org_number] = organisation
                    created_organisations.append(organisation)
                elif _update(organisation, row.organisation):
                    changed_organisations.add(organisation.id)
                if existing is not None:
                    if row.receive and not (existing.receiving_enabled
                                            and existing.sml_status == RegistrationStatus.REGISTERED):
                        to_enable[existing.id] = row
                    else:
                        state = "receiving on" if existing.receiving_enabled else "receiving off"
                        results[row.line] = RowResult(row.line, Outcome.UNCHANGED, row.participant.uri,
                                                      row.org_number, f"already imported ({state})")
                    continue
                participant = Participant(scheme=row.participant.scheme, value=row.participant.value,
                                          organisation=organisation)
                participant.add_default_document_types()
                session.add(participant)
                participants[row.participant] = participant
                created_participants.append(row.participant.uri)
            session.flush()
            if rows:
                audit.record(session, actor, AUDIT_IMPORT, audit.IMPORT, import_id, after={
                    "lines": [rows[0].line, rows[-1].line],
                    "created_organisations": [o.id for o in created_organisations],
                    "updated_organisations": sorted(changed_organisations),
                    "created_participants": created_participants,
                })
            for row in rows:
                if row.line in results:
                    continue
                participant = participants[row.participant]
                if participant.id in to_enable:
                    continue
                if row.receive:
                    to_enable[participant.id] = row
                else:
                    results[row.line] = RowResult(row.line, Outcome.CREATED, row.participant.uri, row.org_number,
                                                  "stored; receiving is off")
    except IntegrityError as exc:
        reason = str(exc.orig or exc).splitlines()[0]
        return {r.line: RowResult(r.line, Outcome.FAILED, r.participant.uri, r.org_number,
                                  f"not stored: the batch clashed with a concurrent change ({reason}); import the "
                                  "file again") for r in rows}
    if to_enable:
        states = enable_many(gateway, list(to_enable), registrar=registrar, workers=workers, actor=actor)
        for participant_id, row in to_enable.items():
            results[row.line] = _registration_result(row, states[participant_id])
    if changed_organisations:
        with gateway.read() as session:
            ids = list(session.scalars(select(Participant.id).where(
                Participant.organisation_id.in_(changed_organisations), Participant.id.not_in(list(to_enable)))))
        republish(gateway, ids, registrar=registrar)
    return results


def _update(organisation: Organisation, fields: dict[str, str | None]) -> bool:
    changed = False
    for name, value in fields.items():
        if getattr(organisation, name) != value:
            setattr(organisation, name, value)
            changed = True
    return changed


def _registration_result(row: ImportRow, state: RegistrationState) -> RowResult:
    uri, org = row.participant.uri, row.org_number
    if state.sml.status == RegistrationStatus.REGISTERED:
        note = f"Peppol Directory: {state.directory.error}" if state.directory.error else None
        return RowResult(row.line, Outcome.REGISTERED, uri, org, note)
    if state.sml.status == RegistrationStatus.REGISTERED_ELSEWHERE:
        return RowResult(row.line, Outcome.REGISTERED_ELSEWHERE, uri, org, state.sml.error)
    return RowResult(row.line, Outcome.FAILED, uri, org, state.smp.error or state.sml.error)
