"""SML management client: registers our SMP and its participants in the SML (discovery.md 4.2, 4.3).

SOAP 1.1 over HTTPS with our Peppol SMP certificate as TLS client certificate (requests' `cert=`).
The messages are built and read by smp.smlsoap; this module only moves them and turns every
failure into an SmlError subclass whose `message` tells the admin what happened and what to do.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TypeVar

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from smp import smlsoap
from smp.identifiers import ParticipantId
from smp.smlsoap import (
    MIGRATION_KEY_MAX,
    MIGRATION_KEY_MIN,
    MIGRATION_KEY_SPECIALS,
    SmlAlreadyRegistered,
    SmlBadRequest,
    SmlError,
    SmlInternalError,
    SmlNotFound,
    SmlUnauthorized,
    SmlUnavailable,
    SmpRecord,
    SoapCall,
    SoapFault,
    migration_key_problem,
    read_fault,
    read_participant_page,
    read_payload,
    read_smp_record,
)

__all__ = [
    "SmlAlreadyRegistered",
    "SmlBadRequest",
    "SmlClient",
    "SmlError",
    "SmlInternalError",
    "SmlNotFound",
    "SmlUnauthorized",
    "SmlUnavailable",
    "SmpRecord",
    "migration_key_problem",
    "new_migration_key",
]

T = TypeVar("T")
MIGRATION_KEY_LENGTH = 16
# Ceiling on List paging, so a misbehaving SML that keeps sending NextPageIdentifier cannot loop us forever.
MAX_LIST_PAGES = 10_000


def new_migration_key(length: int = MIGRATION_KEY_LENGTH) -> str:
    """A random key that satisfies the BDMSL rule (8-24 chars, >= 2 each of specials, upper, lower, digits)."""
    if not MIGRATION_KEY_MIN <= length <= MIGRATION_KEY_MAX:
        raise ValueError(f"a migration key is {MIGRATION_KEY_MIN} to {MIGRATION_KEY_MAX} characters long")
    pools = (MIGRATION_KEY_SPECIALS, string.ascii_uppercase, string.ascii_lowercase, string.digits)
    chars = [secrets.choice(pool) for pool in pools for _ in range(2)]
    everything = "".join(pools)
    chars += [secrets.choice(everything) for _ in range(length - len(chars))]
    # Shuffle so the classes are not in a fixed order (SystemRandom: the key is a secret).
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


class SmlClient:
    """Talks to one SML as one SMP.

    base_url: management base, e.g. https://api.sml.test.tech.peppol.org/edelivery-sml
    client_cert: (certificate PEM path, private key PEM path) of our Peppol SMP certificate, or None
    verify: requests' verify (True, False, or a CA bundle path for the SML's TLS certificate)
    """

    def __init__(self, base_url: str, smp_id: str, client_cert: tuple[str, str] | None = None,
                 verify: bool | str = True, timeout: float = 30.0, session: requests.Session | None = None) -> None:
        if not smp_id.strip():
            raise ValueError("the SMP ID must not be empty")
        self.base_url = base_url.rstrip("/")
        self.smp_id = smp_id.strip()
        self.client_cert = client_cert
        self.verify = verify
        self.timeout = timeout
        self.session = session or requests.Session()
        # Lower-cased URIs of the participants the SML has for our SMP ID, read on the first duplicate
        # answer and kept up to date with this client's own changes (see create_participant).
        self._ours: set[str] | None = None
        self._ours_lock = threading.Lock()

    # --- participants -----------------------------------------------------------------------------

    def create_participant(self, participant: ParticipantId) -> None:
        """Register `participant` as served by our SMP. SmlAlreadyRegistered when another SMP has it.

        Registering a participant that is already ours succeeds: the SML answers a duplicate for
        our own registrations too, and a retry after a lost answer must not tell the admin that
        another provider holds the participant.

        Telling the two apart needs our SMP's participant list, which the SML only gives whole
        (paged). It is read once, on the first duplicate, and this client adds and removes its own
        creates, deletes and migrations, so re-importing thousands of our own participants costs one
        listing instead of one per row. A participant missing from that set is re-checked with a
        fresh listing before we call it another provider's: another client of our SMP (another
        thread or process) may have registered it since. The set can only be wrong the other way
        round if, during this client's life, a participant left us by a migration another SMP
        completed (after our prepare_to_migrate): a duplicate for it is then taken as ours. A
        client lives for one import or one admin action, so that window is small; a new client
        reads the list afresh.
        """
        try:
            self._send(smlsoap.create_participant(self.smp_id, participant), participant)
        except SmlAlreadyRegistered as duplicate:
            try:
                ours = self._is_ours(participant)
            except SmlError:
                raise duplicate from None
            if not ours:
                raise
        else:
            self._remember(participant, True)

    def _is_ours(self, participant: ParticipantId) -> bool:
        key = participant.uri.lower()
        with self._ours_lock:
            if self._ours is not None and key in self._ours:
                return True
        listed = {p.uri.lower() for p in self.list_participants()}
        with self._ours_lock:
            self._ours = listed
        return key in listed

    def _remember(self, participant: ParticipantId, ours: bool) -> None:
        with self._ours_lock:
            if self._ours is not None:
                if ours:
                    self._ours.add(participant.uri.lower())
                else:
                    self._ours.discard(participant.uri.lower())

    def delete_participant(self, participant: ParticipantId) -> None:
        self._send(smlsoap.delete_participant(self.smp_id, participant), participant)
        self._remember(participant, False)

    def list_participants(self) -> list[ParticipantId]:
        """Every participant the SML has for our SMP ID (all pages)."""
        found: list[ParticipantId] = []
        next_page: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = self._read(smlsoap.list_participants(self.smp_id, next_page), read_participant_page)
            found.extend(page.participants)
            if page.next_page is None or page.next_page == next_page or not page.participants:
                return found
            next_page = page.next_page
        raise SmlUnavailable(f"The SML at {self.base_url} kept announcing more participant pages after "
                             f"{MAX_LIST_PAGES} pages; the list was not read completely.")

    def prepare_to_migrate(self, participant: ParticipantId, key: str) -> None:
        """We are the current SMP: allow another SMP to take `participant` over with `key`."""
        self._check_key(key)
        self._send(smlsoap.prepare_to_migrate(self.smp_id, participant, key), participant)

    def migrate(self, participant: ParticipantId, key: str) -> None:
        """We are the new SMP: take `participant` over with the key the current provider gave the customer."""
        self._check_key(key)
        self._send(smlsoap.migrate(self.smp_id, participant, key), participant)
        self._remember(participant, True)

    # --- our SMP ------------------------------------------------------------------------------------

    def create_smp(self, logical_address: str, physical_address: str) -> None:
        """Register our SMP. logical_address: our public SMP base URL (the NAPTR target)."""
        self._send(smlsoap.create_smp(self.smp_id, logical_address, physical_address))

    def read_smp(self) -> SmpRecord:
        return self._read(smlsoap.read_smp(self.smp_id), read_smp_record)

    def update_smp(self, logical_address: str, physical_address: str) -> None:
        self._send(smlsoap.update_smp(self.smp_id, logical_address, physical_address))

    def delete_smp(self) -> None:
        self._send(smlsoap.delete_smp(self.smp_id))
        with self._ours_lock:
            self._ours = set()  # the SML dropped every participant of the SMP with it

    def prepare_change_certificate(self, new_certificate: x509.Certificate, migration_date: date | None = None,
                                   *, today: date | None = None) -> None:
        """Announce our next SMP certificate (renewal, G2 -> G3); call with the CURRENT certificate
        configured as client certificate, then switch the signing key on `migration_date`."""
        today = today or datetime.now(UTC).date()
        if migration_date is not None and migration_date < today:
            raise SmlBadRequest(f"The certificate migration date {migration_date.isoformat()} is in the past; "
                                "the SML only accepts today or a later day.")
        self._send(smlsoap.prepare_change_certificate(new_certificate.public_bytes(Encoding.DER), migration_date))

    # --- plumbing -----------------------------------------------------------------------------------

    def _check_key(self, key: str) -> None:
        problem = migration_key_problem(key)
        if problem:
            raise SmlBadRequest(f"The migration key is not acceptable to the SML: it {problem}. "
                                "Check that it was copied completely from the current provider.")

    def _read(self, call: SoapCall, reader: Callable[[etree._Element | None], T]) -> T:
        data = self._send(call)
        try:
            return reader(read_payload(data))
        except ValueError as exc:
            raise SmlUnavailable(f"The SML at {self.base_url} sent an answer to {call.operation} that cannot be "
                                 f"read: {exc}") from None

    def _send(self, call: SoapCall, participant: ParticipantId | None = None) -> bytes:
        url = f"{self.base_url}/{call.service}"
        try:
            response = self.session.post(
                url,
                data=call.envelope,
                headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"{call.soap_action}"'},
                cert=self.client_cert,
                verify=self.verify,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise SmlUnavailable(
                f"The TLS connection to the SML at {url} failed: {exc}. Check that the SML trusts our SMP "
                "certificate (Peppol SMP certificate of the same network, test or production) and that the "
                "SML's server certificate is trusted here.", detail=str(exc)) from None
        except requests.RequestException as exc:
            raise SmlUnavailable(f"The SML at {url} could not be reached: {exc}. Try again later.",
                                 detail=str(exc)) from None
        body = response.content
        try:
            fault = read_fault(body)
        except ValueError:
            fault = None
            is_soap = False
        else:
            is_soap = True
        if fault is not None:
            raise self._fault_error(call, fault, participant, response.status_code)
        if response.status_code == 200 and is_soap:
            return body
        if response.status_code in (401, 403):
            # A rejected client certificate never reaches SOAP: the SML's front end answers with a page.
            raise SmlUnauthorized(
                f"The SML refused the connection (HTTP {response.status_code}) before reading the request. "
                f"Configure our Peppol SMP certificate as TLS client certificate; it must be the one "
                f"registered for SMP ID {self.smp_id} in this network.",
                detail=response.text[:500], http_status=response.status_code)
        raise SmlUnavailable(
            f"The SML at {url} answered {call.operation} with HTTP {response.status_code} and no SOAP answer; "
            "check the SML address, or try again later.",
            detail=response.text[:500], http_status=response.status_code)

    def _fault_error(self, call: SoapCall, fault: SoapFault, participant: ParticipantId | None,
                     status: int) -> SmlError:
        who = f"participant {participant.uri}" if participant else f"SMP {self.smp_id}"
        said = fault.message or fault.faultstring
        extra = {"detail": said, "code": fault.code, "fault": fault.kind, "http_status": status}
        if participant is not None and call.operation == "createIn" and fault.is_duplicate:
            return SmlAlreadyRegistered(
                f"{participant.uri} is already registered in the Peppol SML by another SMP: the customer is "
                "probably still with (or was with) another Peppol service provider. We cannot register it "
                "until that registration is moved to us. Ask the current provider for a migration key "
                "(PrepareToMigrate), then enter it here to Migrate.", **extra)
        if fault.kind == "UnauthorizedFault" or fault.code in ("ERR-101", "ERR-102", "ERR-103", "ERR-104"):
            return SmlUnauthorized(
                f"The SML does not let our SMP certificate manage {who} (SML said: {said}). Check that the "
                f"configured SMP certificate is the Peppol SMP certificate registered for SMP ID {self.smp_id}, "
                "that it is valid and not revoked, and that test and production are not mixed.", **extra)
        if fault.kind == "NotFoundFault" or fault.code in ("ERR-100", "ERR-110", "ERR-111"):
            return SmlNotFound(self._not_found_message(call, fault, who, said), **extra)
        if fault.kind == "BadRequestFault" or fault.code == "ERR-106":
            if call.operation == "migrateIn" and fault.code in (None, "ERR-111"):
                return SmlNotFound(self._not_found_message(call, fault, who, said), **extra)
            return SmlBadRequest(f"The SML rejected the {call.operation} request for {who}: {said}", **extra)
        return SmlInternalError(
            f"The SML failed while handling {call.operation} for {who} (SML said: {said}). Nothing was changed "
            "on our side; try again later, and contact the SML operator if it persists.", **extra)

    def _not_found_message(self, call: SoapCall, fault: SoapFault, who: str, said: str) -> str:
        if fault.code == "ERR-100":
            # what to do about it is the caller's to say (the gateway names its own admin route)
            return (f"Our SMP ID {self.smp_id} is not registered in this SML (SML said: {said}); check also that "
                    "the SML address belongs to the right network.")
        if call.operation == "migrateIn" or fault.code == "ERR-111":
            return (f"The SML has no migration prepared for {who} with this key (SML said: {said}). Ask the "
                    "current provider to run PrepareToMigrate again and to send the exact key they used.")
        if call.operation == "deleteIn":
            return f"The SML has no registration of {who} by our SMP; there is nothing to delete (SML said: {said})."
        return f"The SML does not know {who} (SML said: {said})."
