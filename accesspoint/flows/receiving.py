"""The receiving access point: one AS4 request in, one answer out (DESIGN.md, the inbound flow).

`receive` reads top to bottom:

1. `open_message`, the AS4 step list of the core (MIME, SOAP, signature policy, envelope, Peppol profile, decrypt,
   verify, wsu:Timestamp if any, signer certificate, From/PartyId = signer CN, bounded gunzip, SBDH, SBDH against
   the ebMS header);
2. have we accepted this AS4 MessageId before (an identical repeat gets its stored receipt again);
3. `INBOUND_CHECKS`, in order, each returning nothing or raising the ebMS error to answer (today: do we serve the
   final recipient for this document type and process);
4. store the message durably, with the receipt we sign for it, and `POST_RECEIPT_ACTIONS` in the same transaction;
   then the receipt leaves.

Durability: the decompressed SBD is written to the blob store and fsync'd first, then one transaction inserts the
Message, the signed Receipt (signed before the commit, so the stored bytes are the bytes we send) and whatever the
post-receipt actions enqueue, and commits (SQLite runs with synchronous=FULL). Only then does the receipt leave. A
crash before the commit leaves at most an orphaned blob file, never a receipt for a message we do not have.

Post-receipt actions enqueue work in that transaction rather than doing it: the work (the BIS validation report,
webhook deliveries; an MLS later) then runs asynchronously and is retried by the worker, and is as durable as the
message it is about, so a crash between the commit and the action cannot lose it.

Duplicates are found by AS4 MessageId in the database, so the check is persistent and shared by every process
(phase4 keeps them 10 minutes in memory, as4.md section 5). A repeat that is identical (same SBD sha256 and the same
signed ds:References, i.e. the same signed eb:Messaging, Body and attachment) is a sender that lost our answer: it
gets the stored receipt again and nothing new is stored or delivered. A reused MessageId with other content is
refused with EBMS:4001 DuplicateDetected, phase4's code since 4.5.0 (as4.md section 4). When two identical requests
race, the unique constraint on (direction, as4_message_id) picks the winner and the loser answers with the winner's
receipt.

Order: the duplicate check comes before the inbound checks, so a sender retrying a message we accepted gets its
receipt even if the participant stopped receiving in between; we did accept that message.

Error answers: a signed ebMS Error signal with HTTP 200, as phase4 does. Requests that are not AS4 at all (no or
wrong Content-Type, broken MIME, unparsable SOAP) and oversized requests carry http_status 400/413 on their
As4Error; like phase4 we answer those with a short text/plain body and no signature: we could not read a message to
refer to, and signing costs an RSA operation we should not spend on garbage.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accesspoint.adapters.blobs import BlobRef
from accesspoint.core import (
    DUPLICATE_DETECTED,
    NOT_SERVICED,
    OTHER,
    As4Error,
    InboundMessage,
    InboundRefusal,
    SignedReceipt,
    UserMessage,
    error_response,
    open_message,
    repeat_difference,
    respond,
)
from accesspoint.core.sbdh import (
    DocumentSpan,
    Sbdh,
    business_document_id,
    document_length,
    iter_business_document,
)
from accesspoint.flows.validation import mark_for_validation
from accesspoint.flows.webhooks import INBOUND_RECEIVED, record_event
from accesspoint.gateway import Gateway
from accesspoint.store.models import DOCUMENT_ID_LENGTH, Direction, Message, MessageState, Receipt
from accesspoint.store.queries import inbound_by_as4_id, serving_participant
from certs.validation import Purpose

log = logging.getLogger(__name__)

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # stored, receipt sent
    REPEATED = "repeated"  # identical repeat of an accepted message: the original receipt again, nothing stored
    PING = "ping"  # ebMS test message: receipt, nothing stored (phase4 hands pings to no business handler)
    REFUSED = "refused"  # an ebMS Error signal (or HTTP 400/413), nothing stored


@dataclass(frozen=True)
class InboundResult:
    """What to answer: HTTP status, body and Content-Type; `message_id` is our Message.id when one is stored."""

    status: int
    body: bytes
    content_type: str
    message_id: str | None
    outcome: Outcome
    error_code: str | None = None


@dataclass
class Accepting:
    """A message that passed the AS4 steps, on its way through the inbound checks; a check may note what it found
    out for the store (the serving check notes the organisation). `session` is a read transaction, None when
    `inspect` runs the checks that need no database."""

    user_message: UserMessage
    sbdh: Sbdh
    session: Session | None
    organisation_id: int | None = None


@dataclass(frozen=True)
class InboundCheck:
    """One inbound check: returns nothing or raises the As4Error to answer. `needs_database` is False for a check
    `inspect` can run too (it has no database); such a check must not touch `Accepting.session`."""

    name: str
    run: Callable[[Accepting], None]
    needs_database: bool = True


@dataclass(frozen=True)
class PostReceiptAction:
    """Work for a stored message, enqueued in the transaction that stores it (see the module docstring)."""

    name: str
    run: Callable[[Session, Message, Sbdh], None]


def _served(accepting: Accepting) -> None:
    """We must serve the final recipient for this document type and process, else NOT_SERVICED (EBMS:0004)."""
    sbdh, session = accepting.sbdh, accepting.session
    assert session is not None, "a database check"
    receiver = sbdh.receiver
    participant = serving_participant(session, receiver.scheme, receiver.value, sbdh.document_type.uri,
                                      sbdh.process.uri)
    if participant is None:
        raise As4Error(OTHER, f"this access point does not receive {sbdh.document_type.uri} (process "
                              f"{sbdh.process.uri}) for {receiver.uri}", detail=NOT_SERVICED)
    accepting.organisation_id = participant.organisation_id


def _hand_over(session: Session, message: Message, sbdh: Sbdh) -> None:
    """The `inbound.received` event and its webhook deliveries: the network is told at least once."""
    assert message.organisation_id is not None and message.received_at is not None
    record_event(
        session, INBOUND_RECEIVED, message.organisation_id, message_id=message.id,
        data={
            "message_id": message.id,
            "as4_message_id": message.as4_message_id,
            "sender": message.sender,
            "receiver": message.receiver,
            "document_type": message.document_type,
            "process": message.process,
            "sbdh_instance_id": sbdh.instance_identifier,
            "document_id": message.document_id,
            "sbdh_instance_reused": message.sbdh_instance_reused,
            "received_at": message.received_at.isoformat(),
        },
    )  # fmt: skip


INBOUND_CHECKS: tuple[InboundCheck, ...] = (InboundCheck("served", _served),)


def offline_checks() -> list[tuple[str, Callable[[UserMessage, Sbdh], None]]]:
    """The inbound checks that need no database, in the form `inspect_message(checks=...)` runs them."""
    def run(check: InboundCheck) -> Callable[[UserMessage, Sbdh], None]:
        return lambda user_message, sbdh: check.run(Accepting(user_message, sbdh, None))

    return [(check.name, run(check)) for check in INBOUND_CHECKS if not check.needs_database]
POST_RECEIPT_ACTIONS: tuple[PostReceiptAction, ...] = (
    PostReceiptAction("validation", mark_for_validation),
    PostReceiptAction("hand-over", _hand_over),
)


def receive(gateway: Gateway, body: Iterable[bytes], content_type: str | None) -> InboundResult:
    """Process one POST /as4 request body (de-chunked, as byte chunks) and return the answer to send."""
    now = datetime.now(UTC)
    as4_message_id: str | None = None
    try:
        with open_message(body, content_type, our_key=gateway.key, limits=gateway.inbound_limits,
                          check_signer=lambda cert: gateway.validator.validate(cert, Purpose.AP_SIGNING, now),
                          now=now) as inbound:
            as4_message_id = inbound.message_id
            if inbound.sbdh is None or inbound.payload is None or inbound.document is None:
                return _ping_receipt(gateway, inbound, now)
            with gateway.read() as session:
                earlier = inbound_by_as4_id(session, as4_message_id)
                if earlier is not None:
                    return _repeat(earlier, inbound)
                accepting = Accepting(inbound.user_message, inbound.sbdh, session)
                for check in INBOUND_CHECKS:
                    check.run(accepting)
            assert accepting.organisation_id is not None, "the served check names the organisation"
            blob = gateway.blobs.put(inbound.payload)
            try:
                document_size = _document_size(inbound.payload, inbound.document)
                receipt = respond(inbound, gateway.key, now=now, domain=gateway.message_id_domain)
                stored = _store(gateway, inbound, inbound.sbdh, accepting.organisation_id, blob,
                                (document_size, _document_id(inbound.payload)), receipt, now)
            except IntegrityError:
                gateway.blobs.delete(blob.key)
                # two requests with this MessageId raced past the duplicate check; the first commit won
                with gateway.read() as session:
                    winner = inbound_by_as4_id(session, as4_message_id)
                    if winner is None:
                        raise
                    return _repeat(winner, inbound)
            except BaseException:
                gateway.blobs.delete(blob.key)
                raise
            log.info("inbound message stored", extra={"message_id": stored.id, "as4_message_id": as4_message_id,
                                                      "receiver": stored.receiver, "peer_ap": stored.peer_ap_cn})
            return InboundResult(200, receipt.raw, SOAP_CONTENT_TYPE, stored.id, Outcome.ACCEPTED)
    except InboundRefusal as exc:
        return _refusal(gateway, exc, exc.message_id, now)
    except As4Error as exc:
        return _refusal(gateway, exc, as4_message_id, now)


def _ping_receipt(gateway: Gateway, inbound: InboundMessage, now: datetime) -> InboundResult:
    receipt = respond(inbound, gateway.key, now=now, domain=gateway.message_id_domain)
    log.info("ebMS ping answered", extra={"as4_message_id": inbound.message_id,
                                          "peer_ap": inbound.user_message.from_party})
    return InboundResult(200, receipt.raw, SOAP_CONTENT_TYPE, None, Outcome.PING)


def _repeat(earlier: Message, inbound: InboundMessage) -> InboundResult:
    if earlier.payload_sha256 != inbound.payload_sha256:
        difference: str | None = "its SBD differs from the one we accepted"
    elif earlier.receipt is None:
        difference = "no receipt is stored for the message we accepted under it"
    else:
        difference = repeat_difference(earlier.receipt.raw, inbound)
    if difference is not None:
        raise As4Error(DUPLICATE_DETECTED, f"the MessageId {inbound.message_id} was already used for another "
                                           f"message we accepted, and {difference}; use a new MessageId for a new "
                                           "message")
    assert earlier.receipt is not None
    log.info("identical repeat of an accepted message: original receipt sent again",
             extra={"message_id": earlier.id, "as4_message_id": inbound.message_id})
    return InboundResult(200, earlier.receipt.raw, SOAP_CONTENT_TYPE, earlier.id, Outcome.REPEATED)


def _earlier_instance(session: Session, sbdh: Sbdh) -> str | None:
    """Our id of an earlier inbound message with this SBDH InstanceIdentifier from the same sender participant."""
    return session.scalar(
        select(Message.id)
        .where(Message.direction == Direction.INBOUND, Message.sbdh_instance_id == sbdh.instance_identifier,
               func.lower(Message.sender) == sbdh.sender.uri.lower())
        .order_by(Message.created_at)
        .limit(1)
    )


def _document_size(sbd: BinaryIO, span: DocumentSpan) -> int:
    """Bytes of the business document the inbox serves (`GET .../document`), for the message's metadata: from the
    offsets when the SBD is UTF-8, else by converting it once (the AS4 steps located the document already)."""
    length = document_length(span)
    return length if length is not None else sum(len(chunk) for chunk in iter_business_document(sbd, span))


def _document_id(sbd: BinaryIO) -> str | None:
    """The business document's own ID (the invoice number) for finding the message by it, cut to the column."""
    sbd.seek(0)
    found = business_document_id(sbd)
    return found[:DOCUMENT_ID_LENGTH] if found else None


def _store(gateway: Gateway, inbound: InboundMessage, sbdh: Sbdh, organisation_id: int, blob: BlobRef,
           document: tuple[int | None, str | None], receipt: SignedReceipt, now: datetime) -> Message:
    """One transaction: Message, Receipt and the post-receipt actions' work; committed before the receipt is sent.
    document: the business document's size and own ID."""
    um = inbound.user_message
    document_size, document_id = document
    # write(): the write lock first, so the instance check and the insert see one state of the database
    with gateway.write() as session:
        duplicate_of = _earlier_instance(session, sbdh)
        if duplicate_of is not None:
            log.warning("SBDH InstanceIdentifier reused by the same sender; stored and flagged",
                        extra={"as4_message_id": um.message_id, "instance_id": sbdh.instance_identifier,
                               "sender": sbdh.sender.uri, "duplicate_of": duplicate_of})
        message = Message(
            direction=Direction.INBOUND,
            organisation_id=organisation_id,
            as4_message_id=um.message_id,
            conversation_id=um.conversation_id,
            sbdh_instance_id=sbdh.instance_identifier,
            document_id=document_id,
            sender=sbdh.sender.uri,
            receiver=sbdh.receiver.uri,
            document_type=sbdh.document_type.uri,
            process=sbdh.process.uri,
            country_c1=sbdh.country_c1,
            peer_ap_cn=um.from_party,
            payload_size=blob.size,
            payload_sha256=blob.sha256,
            blob_key=blob.key,
            document_size=document_size,
            state=MessageState.NEW,
            sbdh_instance_reused=duplicate_of is not None,
            duplicate_of=duplicate_of,
            received_at=now,
        )
        message.receipt = Receipt(
            as4_message_id=receipt.message_id,
            ref_to_message_id=um.message_id,
            raw=receipt.raw,
            sha256=hashlib.sha256(receipt.raw).hexdigest(),
        )
        session.add(message)
        session.flush()
        for action in POST_RECEIPT_ACTIONS:
            action.run(session, message, sbdh)
    return message


def _refusal(gateway: Gateway, exc: As4Error, ref_to_message_id: str | None, now: datetime) -> InboundResult:
    log.info("inbound message refused", extra={"as4_message_id": ref_to_message_id, "code": exc.code,
                                               "description": exc.description, "http_status": exc.http_status})
    if exc.http_status >= 400:
        text = f"{exc.code} {exc.info.short_description}: {exc.description}\n"
        return InboundResult(exc.http_status, text.encode(), TEXT_CONTENT_TYPE, None, Outcome.REFUSED, exc.code)
    body = error_response(exc, ref_to_message_id, gateway.key, now=now, domain=gateway.message_id_domain)
    return InboundResult(exc.http_status, body, SOAP_CONTENT_TYPE, None, Outcome.REFUSED, exc.code)
