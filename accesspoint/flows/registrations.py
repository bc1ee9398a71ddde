"""Receiving on and off for our participants: our SMP, the SML registration and the Peppol Directory.

A participant's `receiving_enabled` is the operator's intent; the three status columns say how far the outside
world follows it (discovery.md 4.3):

- SMP: our SMP answers from the store (smp.server over `StoreParticipantSource`), so it is `registered` as soon
  as receiving is enabled and our SMP key is configured, `unregistered` once it is disabled.
- SML: ManageParticipantIdentifier Create/Delete through `smp.sml.SmlClient`. "Already registered" by another
  SMP becomes `registered-elsewhere` with the migration explanation; the customer's migration key then moves the
  registration to us (`migrate_in`).
- Directory: after a successful SML registration the Directory indexer is asked to read the participant
  (it resolves it through the SML and reads our business card); on disable it is asked to drop it.

Order (discovery.md 4.3): enabling commits `receiving_enabled` first so our SMP serves the participant before
the SML points anyone at it, then SML, then Directory; disabling stops serving, then Directory delete, then SML
delete. No database transaction stays open across a remote call. `resync` brings the outside world in line with
the intent again after a failure, and the worker task `retry_due` does that by itself every RETRY_AFTER for
unfinished steps. Every step records its status and the last error as a sentence an admin can act on.
"""

from __future__ import annotations

import socket
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from accesspoint.config import Config, ConfigError
from accesspoint.gateway import Gateway
from accesspoint.store import audit
from accesspoint.store.audit import Actor, participant_snapshot
from accesspoint.store.models import Participant, RegistrationStatus
from certs.keystore import KeyMaterial
from smp.directory import DirectoryClient, DirectoryError
from smp.identifiers import ParticipantId
from smp.sml import SmlAlreadyRegistered, SmlClient, SmlError, SmlNotFound, SmpRecord

Status = RegistrationStatus

# Statuses after which an SML record of ours may exist and has to be deleted when receiving is switched off.
_SML_MAY_HOLD = (Status.REGISTERED, Status.PENDING, Status.FAILED)
# The worker repeats unfinished registrations this long after the last attempt, this many per round.
RETRY_AFTER = timedelta(minutes=10)
RETRY_BATCH = 20
# audit log actions (store/audit.py); the worker's own retries are not admin actions and are not recorded
AUDIT_RECEIVING = "participant.receiving"
AUDIT_MIGRATE = "participant.migrate"
AUDIT_RESYNC = "participant.resync"
AUDIT_SML_REGISTER = "sml.register"


class ParticipantNotFound(LookupError):
    """No participant with this id."""


class RegistrationConfigError(ConfigError):
    """The [sml] or [directory] configuration cannot be used, or lacks what an action needs; names the key."""


@dataclass(frozen=True)
class StepResult:
    """The outcome of one registration step: the status to record and, when it did not succeed, why."""

    status: RegistrationStatus
    error: str | None = None


@dataclass(frozen=True)
class RegistrationState:
    """A participant's registration as an admin sees it."""

    participant_id: int
    identifier: str
    receiving_enabled: bool
    smp: StepResult
    sml: StepResult
    directory: StepResult
    registered_at: datetime | None

    @classmethod
    def of(cls, participant: Participant) -> RegistrationState:
        return cls(
            participant_id=participant.id,
            identifier=participant.uri,
            receiving_enabled=participant.receiving_enabled,
            smp=StepResult(Status(participant.smp_status), participant.smp_error),
            sml=StepResult(Status(participant.sml_status), participant.sml_error),
            directory=StepResult(Status(participant.directory_status), participant.directory_error),
            registered_at=participant.registered_at,
        )

    def to_dict(self) -> dict[str, Any]:
        def step(result: StepResult) -> dict[str, Any]:
            return {"status": str(result.status), "error": result.error}

        return {
            "participant_id": self.participant_id,
            "identifier": self.identifier,
            "receiving_enabled": self.receiving_enabled,
            "smp": step(self.smp),
            "sml": step(self.sml),
            "directory": step(self.directory),
            "registered_at": self.registered_at.isoformat() if self.registered_at else None,
        }


def service_urls(cfg: Config) -> tuple[str | None, str | None]:
    """The SML management URL and the Directory URL (None = not configured). Loading the configuration checked
    them: http(s) URLs, https outside the local environment."""
    return cfg.sml_management_url or None, cfg.directory.url or None


class Registrar:
    """The SML and Directory steps for one gateway, with clients built once and reused (one per thread, since a
    requests.Session is not meant to be shared between threads). Use as a context manager: it may hold our SMP
    key in a private temporary file for TLS client authentication and removes it on exit."""

    def __init__(self, gateway: Gateway, *, timeout: float = 30.0) -> None:
        cfg = gateway.config
        self.gateway = gateway
        self.timeout = timeout
        self.sml_url, self.directory_url = service_urls(cfg)
        configured_id = cfg.sml.smp_id.strip()
        self.smp_id = configured_id or (gateway.smp_key.subject_cn if gateway.smp_key else "")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cert_dir: tempfile.TemporaryDirectory[str] | None = None
        self._cert_files: tuple[str, str] | None = None

    def __enter__(self) -> Registrar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._cert_dir is not None:
                self._cert_dir.cleanup()
                self._cert_dir = None
                self._cert_files = None

    # --- clients ------------------------------------------------------------------------------------

    def _client_cert(self, url: str) -> tuple[str, str] | None:
        """Our SMP certificate as TLS client certificate for https URLs (the SML and the Directory accept only
        Peppol SMP certificates). requests (through the ssl module) loads client keys from files only, so the
        key is written unencrypted into a private temporary directory for as long as this registrar lives."""
        if not url.startswith("https://"):
            return None
        key = self.gateway.smp_key
        if key is None:
            return None
        with self._lock:
            if self._cert_files is None:
                self._cert_dir = tempfile.TemporaryDirectory(prefix="peppol-smp-client-")
                self._cert_files = _write_client_cert(key, Path(self._cert_dir.name))
            return self._cert_files

    def _sml(self) -> SmlClient:
        client: SmlClient | None = getattr(self._local, "sml", None)
        if client is None:
            assert self.sml_url is not None
            client = SmlClient(self.sml_url, self.smp_id, client_cert=self._client_cert(self.sml_url),
                               timeout=self.timeout)
            self._local.sml = client
        return client

    def _directory(self) -> DirectoryClient:
        client: DirectoryClient | None = getattr(self._local, "directory", None)
        if client is None:
            assert self.directory_url is not None
            client = DirectoryClient(self.directory_url, egress=self.gateway.egress,
                                     client_cert=self._client_cert(self.directory_url), timeout=self.timeout)
            self._local.directory = client
        return client

    # --- the steps ----------------------------------------------------------------------------------

    def smp_step(self) -> StepResult:
        if self.gateway.smp_key is None:
            return StepResult(Status.FAILED, "Our SMP is off: no SMP key is configured (smp_keystore). Configure "
                                             "our Peppol SMP certificate and restart, then re-sync.")
        return StepResult(Status.REGISTERED)

    def _sml_missing(self) -> StepResult | None:
        if self.sml_url is None:
            return StepResult(Status.FAILED, "No SML is configured (sml.management_url is empty): our SMP serves "
                                             "the participant, but senders cannot find it through DNS.")
        if not self.smp_id:
            return StepResult(Status.FAILED, "No SMP ID is known: set sml.smp_id or configure our SMP certificate.")
        return None

    def sml_register(self, participant: ParticipantId) -> StepResult:
        missing = self._sml_missing()
        if missing is not None:
            return missing
        try:
            self._sml().create_participant(participant)
        except SmlAlreadyRegistered as exc:
            return StepResult(Status.REGISTERED_ELSEWHERE, exc.message)
        except SmlError as exc:
            return StepResult(Status.FAILED, _sml_message(exc, "register"))
        return StepResult(Status.REGISTERED)

    def sml_migrate_in(self, participant: ParticipantId, key: str) -> StepResult:
        missing = self._sml_missing()
        if missing is not None:
            return missing
        try:
            self._sml().migrate(participant, key)
        except SmlError as exc:
            return StepResult(Status.FAILED, _sml_message(exc, "migrate"))
        return StepResult(Status.REGISTERED)

    def sml_unregister(self, participant: ParticipantId) -> StepResult:
        missing = self._sml_missing()
        if missing is not None:
            # nothing can have been registered through an SML we do not know
            return StepResult(Status.UNREGISTERED)
        try:
            self._sml().delete_participant(participant)
        except SmlNotFound:
            # not (or no longer) registered by us: what the delete wanted
            return StepResult(Status.UNREGISTERED)
        except SmlError as exc:
            return StepResult(Status.FAILED, _sml_message(exc, "remove"))
        return StepResult(Status.UNREGISTERED)

    def directory_publish(self, participant: ParticipantId) -> StepResult:
        if self.directory_url is None:
            return StepResult(Status.UNREGISTERED)
        try:
            self._directory().publish(participant)
        except DirectoryError as exc:
            return StepResult(Status.FAILED, exc.message)
        return StepResult(Status.REGISTERED)

    def directory_delete(self, participant: ParticipantId) -> StepResult:
        if self.directory_url is None:
            return StepResult(Status.UNREGISTERED)
        try:
            self._directory().delete(participant)
        except DirectoryError as exc:
            return StepResult(Status.FAILED, exc.message)
        return StepResult(Status.UNREGISTERED)

    def register_smp(self) -> SmpRecord:
        """Register our SMP in the SML with logical address `gateway.smp_url`, or correct the address of an
        existing registration. Raises SmlError (message for the admin) or RegistrationConfigError."""
        missing = self._sml_missing()
        if missing is not None:
            raise RegistrationConfigError(missing.error or "the SML is not configured")
        client = self._sml()
        logical = self.gateway.smp_url
        try:
            current = client.read_smp()
        except SmlNotFound:
            client.create_smp(logical, self.physical_address())
        else:
            if current.logical_address.rstrip("/") == logical:
                return current
            client.update_smp(logical, self.physical_address())
        return client.read_smp()

    def read_smp(self) -> SmpRecord:
        missing = self._sml_missing()
        if missing is not None:
            raise RegistrationConfigError(missing.error or "the SML is not configured")
        return self._sml().read_smp()

    def physical_address(self) -> str:
        configured = self.gateway.config.sml.physical_address.strip()
        if configured:
            return configured
        host = urlsplit(self.gateway.public_url).hostname or ""
        try:
            return socket.gethostbyname(host)
        except OSError:
            raise RegistrationConfigError(
                f"sml.physical_address: empty, and the host {host!r} of server.public_url does not resolve to an "
                "IPv4 address; set it to the IPv4 address of our SMP host") from None


def _write_client_cert(key: KeyMaterial, directory: Path) -> tuple[str, str]:
    cert_path = directory / "smp.cert.pem"
    key_path = directory / "smp.key.pem"
    cert_path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (key.certificate, *key.chain)))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return str(cert_path), str(key_path)


# SML error ERR-100: our SMP itself is unknown to the SML, so no participant can be registered before it is
SML_UNKNOWN_SMP = "ERR-100"
SMP_REGISTRATION_REMEDY = ("Register our SMP in the SML with PUT /admin/api/sml, then re-sync the participant "
                           "(POST /admin/api/participants/{id}/resync).")


def _sml_message(exc: SmlError, action: str) -> str:
    if isinstance(exc, SmlNotFound) and exc.code == SML_UNKNOWN_SMP:
        return f"{exc.message} {SMP_REGISTRATION_REMEDY}"
    if exc.retryable:
        return f"{exc.message} (Could not {action} the participant in the SML; re-sync to try again.)"
    return exc.message


# --- the database side ------------------------------------------------------------------------------




def _load(session: Session, participant_id: int) -> Participant:
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise ParticipantNotFound(f"participant {participant_id} does not exist")
    return participant


def _load_many(session: Session, participant_ids: Sequence[int]) -> list[Participant]:
    """The participants in the order of `participant_ids`, read with one query per thousand."""
    found: dict[int, Participant] = {}
    for start in range(0, len(participant_ids), 1000):
        chunk = participant_ids[start:start + 1000]
        found.update((p.id, p) for p in session.scalars(select(Participant).where(Participant.id.in_(chunk))))
    missing = [i for i in participant_ids if i not in found]
    if missing:
        raise ParticipantNotFound(f"participant {missing[0]} does not exist")
    return [found[i] for i in participant_ids]


def _identifier(participant: Participant) -> ParticipantId:
    # Stored identifiers were checked strictly when they were created; syntax is all that matters here.
    return ParticipantId(participant.scheme, participant.value)


def _record(participant: Participant, *, smp: StepResult | None = None, sml: StepResult | None = None,
            directory: StepResult | None = None) -> None:
    if smp is not None:
        participant.smp_status, participant.smp_error = smp.status, smp.error
    if sml is not None:
        if sml.status == Status.REGISTERED and participant.sml_status != Status.REGISTERED:
            participant.registered_at = datetime.now(UTC)
        elif sml.status != Status.REGISTERED:
            participant.registered_at = None
        participant.sml_status, participant.sml_error = sml.status, sml.error
    if directory is not None:
        participant.directory_status, participant.directory_error = directory.status, directory.error


def state(gateway: Gateway, participant_id: int) -> RegistrationState:
    with gateway.read() as session:
        return RegistrationState.of(_load(session, participant_id))


def enable_receiving(gateway: Gateway, participant_id: int, *, registrar: Registrar | None = None,
                     actor: Actor | None = None) -> RegistrationState:
    """Switch receiving on: our SMP serves the participant, the SML points at our SMP, the Directory lists it.
    With an `actor` the change is written to the audit log (so is every admin action below)."""
    return _apply(gateway, [participant_id], enabled=True, registrar=registrar, actor=actor)[participant_id]


def disable_receiving(gateway: Gateway, participant_id: int, *, registrar: Registrar | None = None,
                      actor: Actor | None = None) -> RegistrationState:
    """Switch receiving off: our SMP stops serving it (404), the Directory drops it, the SML record is deleted."""
    return _apply(gateway, [participant_id], enabled=False, registrar=registrar, actor=actor)[participant_id]


def resync(gateway: Gateway, participant_id: int, *, registrar: Registrar | None = None,
           actor: Actor | None = None) -> RegistrationState:
    """Repeat every step for the participant's current intent (after a failure, or to verify the SML)."""
    return _apply(gateway, [participant_id], enabled=None, registrar=registrar, force=True,
                  actor=actor)[participant_id]


def migrate_in(gateway: Gateway, participant_id: int, key: str, *, registrar: Registrar | None = None,
               actor: Actor | None = None) -> RegistrationState:
    """Take over a participant another provider registered, with the migration key the customer got from them
    (their SMP ran PrepareToMigrate). Enables receiving: once the SML points at us we must serve it."""
    return _apply(gateway, [participant_id], enabled=True, registrar=registrar,
                  migration_key=key.strip(), actor=actor)[participant_id]


def enable_many(gateway: Gateway, participant_ids: Sequence[int], *, registrar: Registrar,
                workers: int = 8, actor: Actor | None = None) -> dict[int, RegistrationState]:
    """enable_receiving for many participants (the bulk import): one transaction before and one after, and the
    SML and Directory calls `workers` at a time, since a remote SML answers in tens of milliseconds each."""
    return _apply(gateway, participant_ids, enabled=True, registrar=registrar, workers=workers, actor=actor)


def register_smp(gateway: Gateway, registrar: Registrar, actor: Actor) -> SmpRecord:
    """`Registrar.register_smp`, written to the audit log with the SML's record before and after. The change is
    the SML's, not our database's, so the record is written once the SML has taken it: a refused registration
    raises (SmlError, RegistrationConfigError) and leaves none."""
    try:
        before: SmpRecord | None = registrar.read_smp()
    except SmlNotFound:
        before = None
    after = registrar.register_smp()
    with gateway.read() as session:
        audit.record(session, actor, AUDIT_SML_REGISTER, audit.SML, after.smp_id,
                     before=asdict(before) if before is not None else None, after=asdict(after))
    return after


def republish(gateway: Gateway, participant_ids: Sequence[int], *, registrar: Registrar | None = None) -> None:
    """Tell the Directory that these participants' cards or document types changed (only those it lists)."""
    with _registrar(gateway, registrar) as active:
        if active.directory_url is None:
            return
        for participant_id in participant_ids:
            with gateway.read() as session:
                participant = _load(session, participant_id)
                if not (participant.receiving_enabled and participant.sml_status == Status.REGISTERED):
                    continue
                identifier = _identifier(participant)
            result = active.directory_publish(identifier)
            with gateway.write() as session:
                participant = _load(session, participant_id)
                if participant.receiving_enabled:
                    _record(participant, directory=result)


def retry_due(gateway: Gateway) -> int:
    """Worker task: repeat the steps of participants whose SML or Directory step failed or waits, at most every
    RETRY_AFTER each (a failed attempt updates the row, which restarts its clock), RETRY_BATCH per round.
    `registered-elsewhere` is left alone: only the customer's migration key changes that."""
    stale = datetime.now(UTC) - RETRY_AFTER
    unfinished = (Status.FAILED, Status.PENDING)
    with gateway.read() as session:
        due = list(session.scalars(
            select(Participant.id)
            .where(Participant.updated_at < stale)
            .where(or_(
                and_(Participant.receiving_enabled.is_(True),
                     or_(Participant.sml_status.in_(unfinished), Participant.directory_status.in_(unfinished))),
                and_(Participant.receiving_enabled.is_(False),
                     or_(Participant.sml_status == Status.FAILED, Participant.directory_status == Status.FAILED)),
            ))
            .order_by(Participant.updated_at)
            .limit(RETRY_BATCH)
        ))
    if due:
        _apply(gateway, due, enabled=None, registrar=None)
    return len(due)


@contextmanager
def _registrar(gateway: Gateway, registrar: Registrar | None) -> Iterator[Registrar]:
    if registrar is not None:
        yield registrar
        return
    with Registrar(gateway) as own:
        yield own


@dataclass(frozen=True)
class _Plan:
    """What one participant's remote steps start from (read in the first transaction)."""

    participant_id: int
    identifier: ParticipantId
    wanted: bool
    smp: StepResult
    sml_before: Status
    directory_before: Status


def _apply(gateway: Gateway, participant_ids: Sequence[int], *, enabled: bool | None, registrar: Registrar | None,
           force: bool = False, migration_key: str | None = None, workers: int = 1,
           actor: Actor | None = None) -> dict[int, RegistrationState]:
    """The steps for each participant. With an `actor`, one audit record per participant: a change of intent
    (receiving on/off, migration) in the first transaction, which makes it; a resync, whose change is the
    recorded outcome of the steps, in the last, with the state before the steps as `before`."""
    action = AUDIT_MIGRATE if migration_key is not None else AUDIT_RESYNC if enabled is None else AUDIT_RECEIVING
    with _registrar(gateway, registrar) as active:
        plans: list[_Plan] = []
        before: dict[int, dict[str, Any]] = {}
        with gateway.write() as session:
            for participant in _load_many(session, participant_ids):
                if actor is not None:
                    before[participant.id] = participant_snapshot(participant)
                if enabled is not None:
                    participant.receiving_enabled = enabled
                wanted = participant.receiving_enabled
                smp = active.smp_step() if wanted else StepResult(Status.UNREGISTERED)
                plans.append(_Plan(participant.id, _identifier(participant), wanted, smp,
                                   Status(participant.sml_status), Status(participant.directory_status)))
                _record(participant, smp=smp)
                if actor is not None and action != AUDIT_RESYNC:
                    audit.record(session, actor, action, audit.PARTICIPANT, participant.id,
                                 before=before[participant.id], after=participant_snapshot(participant))

        def remote(plan: _Plan) -> tuple[StepResult, StepResult]:
            if plan.wanted:
                return _switch_on(active, plan, force, migration_key)
            return _switch_off(active, plan)

        if workers > 1 and len(plans) > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="registrar") as pool:
                outcomes = list(pool.map(remote, plans))
        else:
            outcomes = [remote(plan) for plan in plans]
        states: dict[int, RegistrationState] = {}
        with gateway.write() as session:
            participants = _load_many(session, [plan.participant_id for plan in plans])
            for plan, (sml, directory), participant in zip(plans, outcomes, participants, strict=True):
                # A concurrent change of intent wins: its own run records the outcome that matches it.
                if participant.receiving_enabled == plan.wanted:
                    _record(participant, sml=sml, directory=directory)
                    # the attempt's time, even when nothing changed: retry_due counts from it
                    participant.updated_at = datetime.now(UTC)
                if actor is not None and action == AUDIT_RESYNC:
                    audit.record(session, actor, action, audit.PARTICIPANT, participant.id,
                                 before=before[participant.id], after=participant_snapshot(participant))
                states[plan.participant_id] = RegistrationState.of(participant)
        return states


def _switch_on(active: Registrar, plan: _Plan, force: bool, migration_key: str | None) -> tuple[StepResult, StepResult]:
    identifier = plan.identifier
    if plan.smp.status != Status.REGISTERED:
        sml = StepResult(Status.PENDING, "Not registered in the SML while our SMP cannot serve the participant.")
    elif migration_key is not None:
        sml = active.sml_migrate_in(identifier, migration_key)
    elif plan.sml_before != Status.REGISTERED or force:
        sml = active.sml_register(identifier)
    else:
        sml = StepResult(Status.REGISTERED)
    if active.directory_url is None:
        directory = StepResult(Status.UNREGISTERED)
    elif sml.status == Status.REGISTERED:
        directory = active.directory_publish(identifier)
    else:
        # The Directory finds participants through the SML; publishing before that would index nothing.
        directory = StepResult(Status.PENDING, "Not published in the Peppol Directory until the SML registration "
                                               "succeeds.")
    return sml, directory


def _switch_off(active: Registrar, plan: _Plan) -> tuple[StepResult, StepResult]:
    if plan.directory_before != Status.UNREGISTERED:
        directory = active.directory_delete(plan.identifier)
    else:
        directory = StepResult(Status.UNREGISTERED)
    # registered-elsewhere: the SML record belongs to another provider and is not ours to delete
    if plan.sml_before in _SML_MAY_HOLD:
        sml = active.sml_unregister(plan.identifier)
    else:
        sml = StepResult(Status.UNREGISTERED)
    return sml, directory
