"""The receiving access point: one AS4 request in, one answer out (DESIGN.md, inbound flow steps 1-8).

`receive` reads top to bottom. `inbound.open_message` does the protocol steps (MIME, eb:Messaging, decrypt,
verify, signer certificate, From/PartyId = signer CN, bounded gunzip, SBDH, SBDH against the ebMS header); then
this module asks the store: have we accepted this AS4 MessageId before, do we serve the final recipient for this
document type and process, has the sender used this SBDH InstanceIdentifier before; then it stores the message
durably and answers with the signed receipt it stored.

Durability: the decompressed SBD is written to the blob store and fsync'd first, then one transaction inserts the
Message, the signed Receipt (signed before the commit, so the stored bytes are the bytes we send) and the
`inbound.received` Event, and commits (SQLite runs with synchronous=FULL). Only then does the receipt leave. A
crash before the commit leaves at most an orphaned blob file, never a receipt for a message we do not have.

Duplicates are found by AS4 MessageId in the database, so the check is persistent and shared by every process
(phase4 keeps them 10 minutes in memory, as4.md section 5). A repeat that is identical (same SBD sha256 and the same
signed ds:References, i.e. the same signed eb:Messaging, Body and attachment) is a sender that lost our answer: it
gets the stored receipt again and nothing new is stored or delivered. A reused MessageId with other content is
refused with EBMS:4001 DuplicateDetected, phase4's code since 4.5.0 (as4.md section 4). When two identical requests
race, the unique constraint on (direction, as4_message_id) picks the winner and the loser answers with the winner's
receipt.

Order: the duplicate check comes before the "do we serve this participant" check, so a sender retrying a message we
accepted gets its receipt even if the participant stopped receiving in between; we did accept that message.

Error answers: a signed ebMS Error signal with HTTP 200, as phase4 does. Requests that are not AS4 at all (no or
wrong Content-Type, broken MIME, unparsable SOAP) and oversized requests carry http_status 400/413 on their
As4Error; like phase4 we answer those with a short text/plain body and no signature: we could not read a message to
refer to, and signing costs an RSA operation we should not spend on garbage.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import BinaryIO

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accesspoint.adapters.blobs import BlobRef
from accesspoint.core.as4 import messaging
from accesspoint.core.as4.errors import DUPLICATE_DETECTED, NOT_SERVICED, OTHER, As4Error
from accesspoint.core.as4.receipts import nri_reference_mismatch, sign_receipt
from accesspoint.core.peppol.inbound import (
    InboundLimits,
    InboundMessage,
    InboundRefusal,
    SignerCheck,
    error_response,
    open_message,
)
from accesspoint.core.sbdh import Sbdh
from accesspoint.flows.webhooks import INBOUND_RECEIVED, record_event
from accesspoint.gateway import Gateway
from accesspoint.store.database import begin_write
from accesspoint.store.models import Direction, Message, MessageState, Receipt
from accesspoint.store.queries import inbound_by_as4_id, serving_participant
from certs.validation import Purpose, Verdict

log = logging.getLogger(__name__)

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # stored, receipt sent
    REPEATED = "repeated"  # identical repeat of an accepted message: the original receipt again, nothing stored
    PING = "ping"  # ebMS test message: receipt, nothing stored (phase4 hands pings to no business handler)
    REFUSED = "refused"  # an ebMS Error signal (or HTTP 400/413), nothing stored


@dataclass(frozen=True)
class SignedReceipt:
    message_id: str  # the receipt's own eb:MessageId
    raw: bytes  # exactly the bytes we send and store


@dataclass(frozen=True)
class InboundResult:
    """What to answer: HTTP status, body and Content-Type; `message_id` is our Message.id when one is stored."""

    status: int
    body: bytes
    content_type: str
    message_id: str | None
    outcome: Outcome
    error_code: str | None = None


def receive(gateway: Gateway, body: BinaryIO, content_type: str | None) -> InboundResult:
    """Process one POST /as4 request body (de-chunked stream) and return the answer to send."""
    limits = InboundLimits(**vars(gateway.config.as4))
    as4_message_id: str | None = None
    try:
        with open_message(body, content_type, our_key=gateway.key, check_signer=_signer_check(gateway),
                          limits=limits) as inbound:
            as4_message_id = inbound.message_id
            if inbound.sbdh is None or inbound.payload is None:
                return _ping_receipt(gateway, inbound)
            sbdh = inbound.sbdh
            with gateway.read() as session:
                earlier = inbound_by_as4_id(session, as4_message_id)
                if earlier is not None:
                    return _repeat(earlier, inbound)
                organisation_id = _serving_organisation(session, sbdh)
            blob = gateway.blobs.put(inbound.payload)
            try:
                receipt = _sign_receipt(gateway, inbound)
                stored = _store(gateway, inbound, sbdh, organisation_id, blob, receipt)
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
        return _refusal(gateway, exc, exc.message_id)
    except As4Error as exc:
        return _refusal(gateway, exc, as4_message_id)


def _signer_check(gateway: Gateway) -> SignerCheck:
    def check(certificate: x509.Certificate) -> Verdict:
        # chains to the AP CA of our environment, valid now, not revoked (revocation as configured)
        return gateway.validator.validate(certificate, Purpose.AP_SIGNING)

    return check


def _ping_receipt(gateway: Gateway, inbound: InboundMessage) -> InboundResult:
    receipt = _sign_receipt(gateway, inbound)
    log.info("ebMS ping answered", extra={"as4_message_id": inbound.message_id,
                                          "peer_ap": inbound.user_message.from_party})
    return InboundResult(200, receipt.raw, SOAP_CONTENT_TYPE, None, Outcome.PING)


def _sign_receipt(gateway: Gateway, inbound: InboundMessage) -> SignedReceipt:
    receipt_id = messaging.new_message_id(gateway.message_id_domain)
    raw = sign_receipt(inbound.signature.signed_info_references, inbound.message_id, gateway.key,
                       message_id=receipt_id)
    return SignedReceipt(receipt_id, raw)


def _serving_organisation(session: Session, sbdh: Sbdh) -> int:
    """The organisation of the final recipient we serve for this document type + process, else NOT_SERVICED."""
    receiver = sbdh.receiver
    participant = serving_participant(session, receiver.scheme, receiver.value, sbdh.document_type.uri,
                                      sbdh.process.uri)
    if participant is None:
        raise As4Error(OTHER, f"this access point does not receive {sbdh.document_type.uri} (process "
                              f"{sbdh.process.uri}) for {receiver.uri}", detail=NOT_SERVICED)
    return participant.organisation_id


def _same_content(earlier: Message, inbound: InboundMessage) -> str | None:
    """Why a repeat of `earlier`'s MessageId is not the same message, or None when it is."""
    if earlier.payload_sha256 != inbound.payload_sha256:
        return "its SBD differs from the one we accepted"
    if earlier.receipt is None:
        return "no receipt is stored for the message we accepted under it"
    parsed = messaging.parse_envelope_bytes(earlier.receipt.raw)
    assert parsed.receipt is not None  # we stored it as a receipt
    accepted = parsed.receipt.nri_references
    received = inbound.signature.signed_info_references
    if len(accepted) != len(received):
        return f"its signature covers {len(received)} parts, the accepted message's covered {len(accepted)}"
    for ours, theirs in zip(accepted, received, strict=True):
        mismatch = nri_reference_mismatch(theirs, ours)
        if mismatch is not None:
            return f"its signed content differs ({mismatch})"
    return None


def _repeat(earlier: Message, inbound: InboundMessage) -> InboundResult:
    difference = _same_content(earlier, inbound)
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


def _store(gateway: Gateway, inbound: InboundMessage, sbdh: Sbdh, organisation_id: int, blob: BlobRef,
           receipt: SignedReceipt) -> Message:
    """One transaction: Message, Receipt, Event; committed before the receipt is sent."""
    now = datetime.now(UTC)
    um = inbound.user_message
    with gateway.sessions() as session:
        # SQLite: take the write lock first, so the instance check and the insert see one state of the file
        begin_write(session)
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
            sender=sbdh.sender.uri,
            receiver=sbdh.receiver.uri,
            document_type=sbdh.document_type.uri,
            process=sbdh.process.uri,
            country_c1=sbdh.country_c1,
            peer_ap_cn=um.from_party,
            payload_size=blob.size,
            payload_sha256=blob.sha256,
            blob_key=blob.key,
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
        # the event and its webhook deliveries commit with the message: handed to the network at least once
        record_event(
            session, INBOUND_RECEIVED, organisation_id, message_id=message.id,
            data={
                "message_id": message.id,
                "as4_message_id": um.message_id,
                "sender": message.sender,
                "receiver": message.receiver,
                "document_type": message.document_type,
                "process": message.process,
                "sbdh_instance_id": sbdh.instance_identifier,
                "sbdh_instance_reused": duplicate_of is not None,
                "received_at": now.isoformat(),
            },
        )  # fmt: skip
        session.commit()
    return message


def _refusal(gateway: Gateway, exc: As4Error, ref_to_message_id: str | None) -> InboundResult:
    log.info("inbound message refused", extra={"as4_message_id": ref_to_message_id, "code": exc.code,
                                               "description": exc.description, "http_status": exc.http_status})
    if exc.http_status >= 400:
        text = f"{exc.code} {exc.info.short_description}: {exc.description}\n"
        return InboundResult(exc.http_status, text.encode(), TEXT_CONTENT_TYPE, None, Outcome.REFUSED, exc.code)
    body = error_response(exc, ref_to_message_id, gateway.key, domain=gateway.message_id_domain)
    return InboundResult(exc.http_status, body, SOAP_CONTENT_TYPE, None, Outcome.REFUSED, exc.code)
