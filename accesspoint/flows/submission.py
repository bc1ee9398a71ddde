"""Accepting an outbound document: derive and check its Peppol header, then queue it. Shared by the network API
(`POST /api/v1/outbound`) and `peppol-ap send`.

Everything that can be judged without the network is judged here, before anything is stored: a document the
receiving AP would reject for its identifiers or header must be answered with a 422 naming the field, not queued
to fail later. What needs the network (is the receiver registered, does it take this document type) is the
sending pipeline's job (`accesspoint.flows.sending`).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accesspoint.adapters.blobs import BlobStore
from accesspoint.core.sbdh import SBDH_NS, Sbdh, SbdhError, build_sbd, parse_sbdh, sbdh_from_ubl
from accesspoint.store.database import begin_write
from accesspoint.store.models import Direction, Message, MessageState
from accesspoint.store.queries import find_participant
from accesspoint.store.types import utcnow
from base.safexml import XmlError, iterparse
from smp.identifiers import IdentifierError, ParticipantId

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


@dataclass(frozen=True)
class Prepared:
    """A checked document: the complete SBD to send and its header."""

    sbd: bytes
    sbdh: Sbdh
    document_size: int


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


def prepare(document: bytes, *, receiver: str | None = None) -> Prepared:
    """Check a UBL invoice / credit note (the SBDH is derived from it) or a complete SBD (sent as it is).

    `receiver` overrides the receiver of a UBL document (e.g. to send to a test participant); a complete SBD
    already names its receiver and is never rewritten. Raises SubmissionError.
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
        return Prepared(document, header, len(document))
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
    return Prepared(sbd, header, len(document))


def sender_organisation(session: Session, header: Sbdh, organisation_id: int | None) -> int:
    """The organisation sending: the sender must be one of our participants, of `organisation_id` when given."""
    participant = find_participant(session, header.sender.scheme, header.sender.value)
    if participant is None:
        raise SubmissionError("sender", f"{header.sender.value} is not a participant of this access point; register "
                                        "it for your organisation before sending in its name")
    if organisation_id is not None and participant.organisation_id != organisation_id:
        raise SubmissionError("sender", f"{header.sender.value} is not a participant of your organisation")
    return participant.organisation_id


def find_idempotent(session: Session, api_client_id: int, key: str) -> Message | None:
    return session.scalar(select(Message).where(Message.api_client_id == api_client_id,
                                                Message.idempotency_key == key))


def enqueue(session: Session, blobs: BlobStore, prepared: Prepared, *, organisation_id: int,
            deadline: timedelta, api_client_id: int | None = None, idempotency_key: str | None = None,
            now: datetime | None = None) -> tuple[Message, bool]:
    """Store the SBD and queue the message. Returns (message, created); created is False when an earlier
    submission with the same Idempotency-Key won (then nothing new is stored).

    The session must have no transaction open: this commits.
    """
    now = now or utcnow()
    ref = blobs.put(io.BytesIO(prepared.sbd))
    header = prepared.sbdh
    message = Message(
        direction=Direction.OUTBOUND, organisation_id=organisation_id, state=MessageState.QUEUED,
        sender=header.sender.uri, receiver=header.receiver.uri, document_type=header.document_type.uri,
        process=header.process.uri, country_c1=header.country_c1, sbdh_instance_id=header.instance_identifier,
        blob_key=ref.key, payload_size=ref.size, payload_sha256=ref.sha256, document_size=prepared.document_size,
        next_attempt_at=now, deadline_at=now + deadline, created_at=now, updated_at=now,
        api_client_id=api_client_id, idempotency_key=idempotency_key,
    )
    try:
        begin_write(session)
        session.add(message)
        session.commit()
    except IntegrityError:
        session.rollback()
        blobs.delete(ref.key)
        if api_client_id is None or idempotency_key is None:
            raise
        earlier = find_idempotent(session, api_client_id, idempotency_key)
        if earlier is None:
            raise
        return earlier, False
    except BaseException:
        session.rollback()
        blobs.delete(ref.key)
        raise
    return message, True
