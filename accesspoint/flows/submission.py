"""The one door for outbound documents: `submit` takes a UBL document or a complete SBD from any door (the network
API `POST /api/v1/outbound`, `peppol-ap send`, later the console and the folder connector), prepares it and
queues it. A door only translates its input into `submit`'s arguments and its `Accepted` answer or
`SubmissionError` into its own output.

Everything that can be judged without the network is judged here, before anything is stored: a document the
receiving AP would reject for its size, identifiers or header must be answered with an error naming the field,
not queued to fail later. What needs the network (is the receiver registered, does it take this document type)
is the sending pipeline's job (`accesspoint.flows.sending`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accesspoint.adapters.validation import NotXml, RulesUnavailable
from accesspoint.config import SendingSettings
from accesspoint.core.sbdh import SBDH_NS, Sbdh, SbdhError, build_sbd, business_document_id, parse_sbdh, sbdh_from_ubl
from accesspoint.core.validation import Report, Status
from accesspoint.flows.validation import report_json, validate_document
from accesspoint.gateway import Gateway
from accesspoint.health import worker_missing
from accesspoint.store.models import DOCUMENT_ID_LENGTH, Direction, Message, MessageState, Organisation, ValidationMode
from accesspoint.store.queries import find_participant
from accesspoint.store.types import utcnow
from base.safexml import XmlError, iterparse
from smp.identifiers import IdentifierError, ParticipantId

log = logging.getLogger(__name__)

# SBDH error ids (accesspoint.core.sbdh) -> the field of the submission they are about
_FIELD_OF_CODE = {
    "sender": "sender",
    "receiver": "receiver",
    "document-type": "document_type",
    "process": "process",
    "country-c1": "country_c1",
    "instance-identifier": "instance_identifier",
}


class SubmissionError(ValueError):
    """The document cannot be sent as it is; `field` names what is wrong (sender, receiver, document_type,
    process, country_c1, document, ...), `code` is the SBDH check that failed when there is one."""

    def __init__(self, field: str, detail: str, code: str | None = None) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.code = code


class DocumentTooLarge(SubmissionError):
    """The document is larger than the gateway takes (as4.max_payload_bytes): the receiving AP, bound by the same
    kind of limit, would refuse it, and the doors must not buffer more than that."""

    def __init__(self, limit: int) -> None:
        super().__init__("document", f"the document is larger than {limit} bytes (as4.max_payload_bytes)")
        self.limit = limit


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before with another request: the first message stands, this one is not queued
    (the IETF Idempotency-Key draft answers 422)."""

    def __init__(self, key: str, earlier: Message) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for another request (message {earlier.id})")
        self.key = key
        self.earlier = earlier


class ValidationRefused(SubmissionError):
    """The document has fatal BIS validation findings (and its organisation refuses such documents): a sending AP
    must not send it. `report` lists every finding."""

    def __init__(self, report: Report) -> None:
        rules = ", ".join(dict.fromkeys(f.rule_id for f in report.fatal))
        super().__init__("document", f"not Peppol BIS compliant (release {report.release}): {len(report.fatal)} "
                                     f"fatal finding(s): {rules}", "bis-validation")
        self.report = report


class RulesNotInstalled(SubmissionError):
    """The validation rules are not installed, so nothing can be checked and nothing is sent unvalidated."""

    def __init__(self, detail: str) -> None:
        super().__init__("document", detail, "bis-rules-not-installed")


@dataclass(frozen=True)
class Prepared:
    """A document ready to queue: the complete SBD to send, its header, the organisation sending it, the document
    as submitted (a bare UBL document or the SBD), and the validation outcome to store (set by the BIS check)."""

    sbd: bytes
    sbdh: Sbdh
    document_size: int
    organisation_id: int
    document: bytes
    document_id: str | None = None  # the business document's own ID (cbc:ID, the invoice number)
    validation: dict[str, Any] | None = None


OutboundCheck = Callable[[Gateway, Prepared], Prepared]
"""Returns the document to go on with (possibly with what it found attached) when it may be sent; raises
SubmissionError (naming the field) to refuse it."""


def _bis_validation(gateway: Gateway, prepared: Prepared) -> Prepared:
    """The official BIS rules (accesspoint.flows.validation): a fatal finding refuses the document unless its
    organisation's validation_mode is `warn`; warnings (and, in warn mode, the fatal findings) are kept with it."""
    try:
        report = validate_document(gateway, prepared.document)
    except RulesUnavailable as exc:
        raise RulesNotInstalled(str(exc)) from None
    except NotXml as exc:
        raise SubmissionError("document", str(exc)) from None
    with gateway.read() as session:
        organisation = session.get(Organisation, prepared.organisation_id)
        mode = ValidationMode(organisation.validation_mode if organisation else ValidationMode.REFUSE)
    if report is not None and report.status is Status.INVALID and mode is ValidationMode.REFUSE:
        raise ValidationRefused(report)
    return dataclasses.replace(prepared, validation=report_json(report, mode))


OUTBOUND_CHECKS: tuple[OutboundCheck, ...] = (_bis_validation,)
"""The outbound checks, in order, run at the single exit of `submit`'s preparation: after the SBDH is derived and
the sender is known to be ours, before anything is stored. A new check is added here, never in a door, so the API,
the CLI, the console and the folder connector all refuse the same documents."""


@dataclass(frozen=True)
class Accepted:
    """`submit`'s answer: the queued message, or the earlier one when `replayed` (same Idempotency-Key)."""

    message: Message
    replayed: bool


def _field_for(code: str) -> str:
    for fragment, field_name in _FIELD_OF_CODE.items():
        if fragment in code:
            return field_name
    return "document"


def _is_sbd(document: bytes) -> bool:
    """Is the root element a StandardBusinessDocument (a complete SBD) rather than a bare UBL document?"""
    try:
        for _event, element in iterparse(io.BytesIO(document), events=("start",)):
            return element.tag == f"{{{SBDH_NS}}}StandardBusinessDocument"
    except (etree.XMLSyntaxError, XmlError) as exc:
        raise SubmissionError("document", f"the document is not well-formed XML: {exc}") from None
    raise SubmissionError("document", "the document is empty")


def _strict(participant: ParticipantId, field_name: str) -> ParticipantId:
    # the SBDH reader checks syntax only (like peppol-commons); a sender also checks the Peppol code list and
    # the check digits, so a mistyped organisation number is caught here and not by a failing lookup
    try:
        return ParticipantId.parse(participant.uri, strict=True)
    except IdentifierError as exc:
        raise SubmissionError(field_name, str(exc), f"invalid-{field_name}-value") from None


def _wrap(document: bytes, receiver: str | None) -> tuple[bytes, Sbdh]:
    """Check a UBL invoice / credit note (the SBDH is derived from it) or a complete SBD (sent as it is).

    `receiver` overrides the receiver of a UBL document (e.g. to send to a test participant); a complete SBD
    already names its receiver and is never rewritten. Returns the SBD to send and its header; raises
    SubmissionError.
    """
    if not document.strip():
        raise SubmissionError("document", "the request body is empty; send a UBL invoice or credit note, or an SBD")
    if _is_sbd(document):
        if receiver is not None:
            raise SubmissionError("receiver", "a complete SBD names its receiver in its header and is sent unchanged; "
                                              "leave out the receiver or submit the bare UBL document")
        try:
            header = parse_sbdh(document)
        except SbdhError as exc:
            raise SubmissionError(_field_for(exc.code), str(exc), exc.code) from None
        header = dataclasses.replace(header, sender=_strict(header.sender, "sender"),
                                     receiver=_strict(header.receiver, "receiver"))
        return document, header
    try:
        header = sbdh_from_ubl(document, creation=utcnow())
    except SbdhError as exc:
        raise SubmissionError(_field_for(exc.code), str(exc), exc.code) from None
    if receiver is not None:
        try:
            header = dataclasses.replace(header, receiver=ParticipantId.parse(receiver, strict=True))
        except IdentifierError as exc:
            raise SubmissionError("receiver", str(exc), "invalid-receiver-value") from None
    try:
        sbd = build_sbd(header, document)
    except SbdhError as exc:
        raise SubmissionError(_field_for(exc.code), str(exc), exc.code) from None
    return sbd, header


def _read(source: BinaryIO, declared_size: int | None, limit: int) -> bytes:
    """At most `limit` bytes of the document; a declared size over the limit is refused before reading."""
    if declared_size is not None and declared_size > limit:
        raise DocumentTooLarge(limit)
    data = source.read(limit + 1)
    if len(data) > limit:
        raise DocumentTooLarge(limit)
    return data


def _sender_organisation(session: Session, header: Sbdh, organisation_id: int | None) -> int:
    """The organisation sending: the sender must be one of our participants, of `organisation_id` when given."""
    participant = find_participant(session, header.sender.scheme, header.sender.value)
    if participant is None:
        raise SubmissionError("sender", f"{header.sender.value} is not a participant of this access point; register "
                                        "it for your organisation before sending in its name")
    if organisation_id is not None and participant.organisation_id != organisation_id:
        raise SubmissionError("sender", f"{header.sender.value} is not a participant of your organisation")
    return participant.organisation_id


def _prepare(gateway: Gateway, document: bytes, receiver: str | None, organisation_id: int | None) -> Prepared:
    """Derive and check the header, find the sending organisation; the outbound checks run at this one exit."""
    sbd, header = _wrap(document, receiver)
    with gateway.read() as session:
        sender = _sender_organisation(session, header, organisation_id)
    document_id = business_document_id(io.BytesIO(sbd))
    prepared = Prepared(sbd, header, len(document), sender, document,
                        document_id[:DOCUMENT_ID_LENGTH] if document_id else None)
    for check in OUTBOUND_CHECKS:
        prepared = check(gateway, prepared)
    return prepared


def _fingerprint(document: bytes, receiver: str | None) -> str:
    """sha256 hex of what makes a submission the same request: the document as sent and the receiver override
    (the only other input that changes what is queued). Length-prefixed, so no two requests share the bytes hashed."""
    override = (receiver or "").encode("utf-8")
    return hashlib.sha256(b"%d:%s" % (len(override), override) + document).hexdigest()


def _find_idempotent(session: Session, api_client_id: int, key: str) -> Message | None:
    # the attempts are loaded with it: a door renders the message after the transaction has ended
    return session.scalar(select(Message).options(selectinload(Message.attempt_log))
                          .where(Message.api_client_id == api_client_id, Message.idempotency_key == key))


def _replay(gateway: Gateway, api_client_id: int | None, key: str | None, request: str | None) -> Message | None:
    """The earlier message of this key when `request` (its fingerprint) is the same; IdempotencyKeyReused when it
    is another. Messages queued before fingerprints were kept have none and are replayed as they were."""
    if api_client_id is None or key is None:
        return None
    with gateway.read() as session:
        earlier = _find_idempotent(session, api_client_id, key)
    if earlier is not None and earlier.idempotency_fingerprint not in (None, request):
        raise IdempotencyKeyReused(key, earlier)
    return earlier


def _enqueue(gateway: Gateway, prepared: Prepared, api_client_id: int | None, key: str | None,
             request: str | None) -> Accepted:
    """Store the SBD and queue the message. When an earlier submission with the same Idempotency-Key won the race
    (the unique constraint says so), nothing new is kept and the earlier message is the answer, or the refusal if
    it was another request: the key is written with the message in one transaction, so a second request with the
    key waits for the first one's commit and never sees it half done (no 409 "still in flight" is needed)."""
    now = utcnow()
    ref = gateway.blobs.put(io.BytesIO(prepared.sbd))
    header = prepared.sbdh
    message = Message(
        direction=Direction.OUTBOUND, organisation_id=prepared.organisation_id, state=MessageState.QUEUED,
        sender=header.sender.uri, receiver=header.receiver.uri, document_type=header.document_type.uri,
        process=header.process.uri, country_c1=header.country_c1, sbdh_instance_id=header.instance_identifier,
        document_id=prepared.document_id, blob_key=ref.key, payload_size=ref.size, payload_sha256=ref.sha256,
        document_size=prepared.document_size,
        next_attempt_at=now, deadline_at=now + SendingSettings.from_config(gateway.config).deadline,
        created_at=now, updated_at=now, api_client_id=api_client_id, idempotency_key=key,
        idempotency_fingerprint=request, attempt_log=[], validation=prepared.validation,
    )
    try:
        with gateway.write() as session:
            session.add(message)
    except IntegrityError:
        gateway.blobs.delete(ref.key)
        earlier = _replay(gateway, api_client_id, key, request)
        if earlier is None:
            raise
        return Accepted(earlier, replayed=True)
    except BaseException:
        gateway.blobs.delete(ref.key)
        raise
    return Accepted(message, replayed=False)


def submit(gateway: Gateway, source: BinaryIO, *, declared_size: int | None = None, receiver: str | None = None,
           organisation_id: int | None = None, api_client_id: int | None = None,
           idempotency_key: str | None = None) -> Accepted:
    """Check a UBL invoice / credit note (the SBDH is derived from it) or a complete SBD (sent as it is) read from
    `source`, and queue it for its Peppol receiver. Raises SubmissionError (DocumentTooLarge for the size limit)
    before anything is stored.

    `declared_size` (e.g. Content-Length) refuses a document too large before it is read; `receiver` overrides
    the receiver of a UBL document (a complete SBD is never rewritten); `organisation_id` restricts the sender to
    that organisation's participants (None: any of ours, for an admin's CLI). `idempotency_key` is scoped to
    `api_client_id`: the key repeated with the same document and receiver answers the earlier message, replayed;
    with another one it raises IdempotencyKeyReused, and nothing is queued.
    """
    document = _read(source, declared_size, gateway.config.as4.max_payload_bytes)
    # only a keyed submission is ever compared with another, so the others (up to as4.max_payload_bytes) are not hashed
    request = _fingerprint(document, receiver) if idempotency_key is not None else None
    earlier = _replay(gateway, api_client_id, idempotency_key, request)
    if earlier is not None:
        return Accepted(earlier, replayed=True)
    prepared = _prepare(gateway, document, receiver, organisation_id)
    accepted = _enqueue(gateway, prepared, api_client_id, idempotency_key, request)
    with gateway.read() as session:
        if worker_missing(gateway, session, utcnow()):
            # the one line in the log that explains a message that stays queued (the status hint says it too)
            log.warning("message queued, but no background worker is running: start `peppol-ap worker` (or "
                        "`peppol-ap run`)", extra={"message_id": accepted.message.id})
    return accepted
