"""The outbound pipeline: claim a queued message, find the receiver's access point, build, POST, check the receipt,
and record what happened (DESIGN.md, outbound steps 2-4).

Each attempt ends in one of three ways:
- sent: a receipt that passed every check (signature over its own Messaging and Body, signed by the receiving
  AP's certificate from the SMP which chains to the Peppol AP CA, RefToMessageId = our MessageId, the
  non-repudiation digests equal what we signed). The receipt bytes are stored as evidence.
- transient failure (no connection, time-out, HTTP 5xx without an ebMS answer, discovery temporarily
  unavailable, circuit breaker open): retried with exponential backoff and jitter until the deadline.
- permanent failure (not registered, document type not supported, untrusted SMP or certificate, an ebMS error of
  failure severity, an invalid receipt): failed at once, with a reason and a hint a person can act on.

MessageIds (shared/docs/as4.md pitfall 16): a resend after a transport failure that got no answer keeps the AS4
MessageId, so a receiver that did get the first copy sees a duplicate, not a second invoice; once the receiver
has answered (an error, a broken receipt) the next try uses a new MessageId, because phase4 rejects a known
MessageId as a duplicate (EBMS:4001) without returning the original receipt. The HTTP body of a try is stored in
the blob store (`Message.wire_blob_key`) and its MessageId committed before the POST, so a resend after no answer,
even by another worker after this one died mid-send, is the same bytes: a receiver that stored the first copy can
recognise the repeat (ours answers it with the stored receipt) instead of seeing a changed message under a known id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from lxml import etree
from sqlalchemy import update
from sqlalchemy.orm import Session

from accesspoint.adapters.blobs import CHUNK, BlobNotFoundError
from accesspoint.adapters.transport import CircuitBreaker, HttpAnswer, Transport, TransportError
from accesspoint.config import SendingSettings
from accesspoint.core import (
    DUPLICATE_DETECTED,
    INVALID_RECEIPT,
    NOT_SERVICED,
    As4Error,
    BadReceipt,
    BoundaryCollisionError,
    ErrorSignal,
    NotAnAnswer,
    Refused,
    SignerCheck,
    build_message,
    new_message_id,
    open_answer,
    signed_references,
)
from accesspoint.core.sbdh import SbdhError, parse_sbdh
from accesspoint.flows import webhooks
from accesspoint.gateway import Gateway
from accesspoint.store import audit
from accesspoint.store.audit import Actor, message_snapshot
from accesspoint.store.database import claim_outbound
from accesspoint.store.models import (
    BIS_BILLING_CREDIT_NOTE,
    BIS_BILLING_INVOICE,
    Attempt,
    AttemptOutcome,
    Direction,
    Event,
    Message,
    MessageState,
    Receipt,
)
from accesspoint.store.types import utcnow
from base import safexml
from base.chunks import chunk_stream
from certs.names import common_name
from certs.validation import Purpose
from smp.client import EndpointResult
from smp.errors import DiscoveryError, NotSupported, ParticipantNotRegistered
from smp.identifiers import DocumentTypeId, ParticipantId, ProcessId

log = logging.getLogger(__name__)

# the audit log action of POST .../retry
AUDIT_RETRY = "message.retry"

# Attempt error codes of tries that never reached the receiving AP: they say nothing about the MessageId.
NOT_POSTED = frozenset({"circuit-open", "build-error"})
# Transport failures with no answer: the receiver may or may not hold the message (keep the MessageId).
UNANSWERED = frozenset({"connection", "timeout", "response", "interrupted"})
# Statuses that mean "try again later" when the answer holds no ebMS signal.
TRANSIENT_STATUSES = frozenset({408, 425, 429})

_DOCUMENT_NAMES = {
    BIS_BILLING_INVOICE: "Peppol BIS Billing 3.0 invoices",
    BIS_BILLING_CREDIT_NOTE: "Peppol BIS Billing 3.0 credit notes",
}


@dataclass(frozen=True)
class Failure:
    """Why an attempt did not end in a verified receipt, and whether trying again can help."""

    transient: bool
    code: str
    reason: str
    hint: str
    http_status: int | None = None
    not_before: datetime | None = None  # earliest next try (circuit breaker)


def backoff(attempt: int, settings: SendingSettings, rng: random.Random) -> timedelta:
    """Delay before retry number `attempt` (1 = first retry): exponential, capped, with "equal jitter" (half fixed,
    half random) so messages that failed together do not all come back in the same second."""
    base = min(settings.retry_initial * 2 ** max(0, attempt - 1), settings.retry_max)
    return timedelta(seconds=base / 2 + rng.uniform(0, base / 2))


@dataclass(frozen=True)
class NextState:
    """Where a failed try leaves the message: `retrying` at `retry_at`, or `failed`, with what to tell a person."""

    state: MessageState
    retry_at: datetime | None
    reason: str
    hint: str


def next_state(failure: Failure, *, transient_failures: int, attempts: int, deadline_at: datetime | None,
               message_id: str, settings: SendingSettings, now: datetime, rng: random.Random) -> NextState:
    """The retry decision, a pure function: a transient failure is retried after the backoff for the number of
    transient failures so far (never before the circuit breaker's `not_before`) unless that lands past the sending
    deadline; anything else fails at once with the failure's own reason and hint."""
    if not failure.transient:
        return NextState(MessageState.FAILED, None, failure.reason, failure.hint)
    retry_at = now + backoff(transient_failures, settings, rng)
    if failure.not_before is not None:
        retry_at = max(retry_at, failure.not_before)
    if deadline_at is not None and retry_at > deadline_at:
        return NextState(
            MessageState.FAILED, None,
            f"gave up after {attempts} attempt(s) by the deadline {deadline_at:%Y-%m-%d %H:%M:%S} UTC; last error: "
            f"{failure.reason}",
            f"{failure.hint} The sending deadline (sending.deadline_hours) has passed; "
            f"POST /api/v1/outbound/{message_id}/retry to try again.")
    return NextState(MessageState.RETRYING, retry_at, failure.reason, failure.hint)


def document_name(document_type: str, process: str) -> str:
    return _DOCUMENT_NAMES.get(document_type, f"document type {document_type} (process {process})")


def classify_discovery(exc: DiscoveryError, message: Message) -> Failure:
    receiver = ParticipantId.parse(message.receiver or "", strict=False)
    if isinstance(exc, ParticipantNotRegistered):
        reason = f"{receiver.value} is not registered in Peppol"
    elif isinstance(exc, NotSupported):
        name = document_name(message.document_type or "", message.process or "")
        reason = f"the receiver's SMP has no endpoint for {name}"
    else:
        reason = exc.message
    detail = f"{reason} ({exc.message})" if reason != exc.message else reason
    return Failure(exc.retryable, exc.kind, detail, exc.hint)


def classify_transport(exc: TransportError) -> Failure:
    if exc.kind == "refused":
        return Failure(False, "endpoint-refused", exc.message,
                       "The receiver's SMP names an AS4 endpoint on an address the gateway does not connect to (not "
                       "public). Ask the receiver to fix their registration; an operator who means to deliver into "
                       "that network lists it in egress.allow.")
    hint = {
        "circuit-open": "The receiving access point failed repeatedly; its messages wait until it answers again.",
        "timeout": "The receiving access point did not answer in time; the message will be sent again.",
    }.get(exc.kind, "The receiving access point could not be reached; the message will be sent again.")
    return Failure(True, exc.kind, exc.message, hint)


# phase4 before 4.5.0 (EBMS:4001 came with 4.5.0) answers a MessageId it has seen within its duplicate window with
# EBMS:0004 Other and this detail, after "Not invoking SPIs, because message with Message ID '<id>'".
PHASE4_DUPLICATE_DETAIL = "was already handled (this is a duplicate)"


def is_duplicate_answer(signal: ErrorSignal) -> bool:
    """The receiver says it already has a message with our MessageId (EBMS:4001, or phase4 4.4's EBMS:0004)."""
    return DUPLICATE_DETECTED in signal.codes or signal.has_detail(PHASE4_DUPLICATE_DETAIL)


def classify_error_signal(signal: ErrorSignal, status: int) -> Failure:
    reason = f"the receiving access point rejected the message: {signal}"
    if signal.soap_fault:
        reason += f" (SOAP fault: {signal.soap_fault})"
    code = signal.codes[0] if signal.codes else "ebms-error"
    if not signal.is_failure:
        return Failure(True, code, reason, "The receiving access point answered with warnings only and no receipt; "
                                           "the message will be sent again.", status)
    if signal.has_detail(NOT_SERVICED):
        hint = ("The receiving access point says it does not serve this receiver for this document type, although "
                "the receiver's SMP names it: the registration is outdated. Ask the receiver to fix their Peppol "
                "registration, then retry.")
    elif is_duplicate_answer(signal):
        hint = ("The receiving access point already has a message with this MessageId, so it probably received the "
                "document although we never got its receipt. Confirm with the receiver before sending again.")
    else:
        hint = ("Peppol access points reject only what they cannot accept: check the document and its header. "
                "If it looks right, contact the receiving access point's operator with the error above.")
    return Failure(False, code, reason, hint, status)


@dataclass(frozen=True)
class Verified:
    """A receipt that passed every check; `raw` is the SOAP envelope as received (the whole body, or the root part
    of a multipart answer), kept as evidence."""

    receipt_message_id: str
    ref_to_message_id: str
    raw: bytes


def judge_answer(answer: HttpAnswer, sent_message_id: str, sent_references: Sequence[etree._Element],
                 expected_signer: x509.Certificate, check_signer: SignerCheck) -> Verified | Failure:
    """Turn the receiving AP's answer into a verified receipt or a classified failure; never a silent success.

    `expected_signer` is the receiving AP's certificate from the SMP; `check_signer(cert)` judges the receipt signer
    against the Peppol AP CA (a certs.validation Verdict).
    """
    status = answer.status
    opened = open_answer(answer.body, answer.content_type, sent_message_id=sent_message_id,
                         sent_references=sent_references, expected_signer=expected_signer, check_signer=check_signer)
    if isinstance(opened, NotAnAnswer):
        text = answer.body[:200].decode("utf-8", "replace").strip()
        shown = f": {text!r}" if text else " (empty body)"
        reason = f"HTTP {status} without an AS4 signal{shown} ({opened.reason})"
        if status >= 500 or status in TRANSIENT_STATUSES:
            return Failure(True, f"http-{status}", reason, "The receiving access point failed; the message will be "
                                                            "sent again.", status)
        return Failure(False, f"http-{status}", reason, "The receiving access point answered with something that is "
                                                         "neither a receipt nor an ebMS error; contact its operator.",
                       status)
    if isinstance(opened, Refused):
        return classify_error_signal(opened.signal, status)
    if isinstance(opened, BadReceipt):
        return Failure(False, INVALID_RECEIPT, "the receipt of the receiving access point is invalid: "
                       + "; ".join(opened.problems),
                       "The receiving access point probably has the document but its receipt cannot serve as evidence; "
                       "confirm with the receiver before sending again, and report the receipt to its operator.",
                       status)
    return Verified(opened.receipt_message_id, opened.ref_to_message_id, opened.raw)


@dataclass(frozen=True)
class Wire:
    """The HTTP body of one AS4 message as stored in the blob store, and what its receipt must acknowledge."""

    message_id: str
    blob_key: str
    content_type: str
    references: Sequence[etree._Element]


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def record_event(session: Session, message: Message, type_: str, data: dict[str, Any]) -> Event:
    """The event of an outbound state change, with its webhook deliveries, in the caller's transaction."""
    if message.organisation_id is None:
        raise ValueError(f"outbound message {message.id} belongs to no organisation; submission always sets one")
    return webhooks.record_event(session, type_, message.organisation_id, message_id=message.id, data={
        "message_id": message.id, "state": message.state, "sender": message.sender, "receiver": message.receiver,
        "document_id": message.document_id, **data})


def reuse_message_id(message: Message) -> bool:
    """Keep the AS4 MessageId when the last try that reached the network got no answer at all."""
    if message.as4_message_id is None:
        return False
    for attempt in reversed(message.attempt_log):
        if attempt.endpoint_url is None or attempt.error_code in NOT_POSTED:
            continue
        return attempt.outcome == AttemptOutcome.TRANSIENT and attempt.error_code in UNANSWERED
    return False


class Sender:
    """The per-process sending state (connections, circuit breakers) around the pipeline."""

    def __init__(self, gateway: Gateway, settings: SendingSettings | None = None,
                 rng: random.Random | None = None) -> None:
        self.gateway = gateway
        self.settings = settings or SendingSettings.from_config(gateway.config)
        self.rng = rng or random.Random()  # noqa: S311  # jitter, not secrecy
        self.transport = Transport(
            gateway.egress, connect_timeout=self.settings.connect_timeout,
            response_timeout=self.settings.response_timeout,
            breaker=CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_open),
        )
        self.worker_id = _worker_id()

    # ------------------------------------------------------------------ claiming

    def send_due(self) -> int:
        """Claim due messages and send each once; the number handled."""
        ids = self.gateway.claim(lambda session: [m.id for m in claim_outbound(
            session, self.worker_id, self.settings.batch_size, utcnow(), self.settings.lease)])
        for message_id in ids:
            self.attempt_or_release(message_id)
        return len(ids)

    def attempt_or_release(self, message_id: str) -> None:
        """Attempt a claimed message; if that breaks unexpectedly, hand the message back for a later try at once
        instead of leaving it locked until the lease runs out (the rest of the batch still gets its turn)."""
        try:
            self.attempt(message_id)
        except Exception:
            log.exception("outbound message %s: unexpected failure during an attempt; released for a later try",
                          message_id)
            retry_at = utcnow() + backoff(1, self.settings, self.rng)
            try:
                with self.gateway.write() as session:
                    session.execute(
                        update(Message)
                        .where(Message.id == message_id, Message.locked_by == self.worker_id)
                        .values(state=MessageState.RETRYING, next_attempt_at=retry_at, locked_by=None,
                                locked_until=None)
                        .execution_options(synchronize_session=False)
                    )
            except Exception:  # the lease still frees it
                log.exception("outbound message %s could not be released; its lease will free it", message_id)

    def claim(self, message_id: str) -> bool:
        """Claim one message if it is due (queued/retrying and its time has come, or a lapsed lease)."""
        now = utcnow()
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.direction == Direction.OUTBOUND,
                   ((Message.state.in_([MessageState.QUEUED, MessageState.RETRYING]))
                    & (Message.next_attempt_at <= now))
                   | ((Message.state == MessageState.SENDING) & (Message.locked_until < now)))
            .values(state=MessageState.SENDING, locked_by=self.worker_id, locked_until=now + self.settings.lease)
            .execution_options(synchronize_session=False)
        )
        with self.gateway.write() as session:
            return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]

    def send_one(self, message_id: str) -> bool:
        """Claim and send one message now if it is due; False when it is not due or another worker has it."""
        if not self.claim(message_id):
            return False
        self.attempt_or_release(message_id)
        return True

    # ------------------------------------------------------------------ one attempt

    def attempt(self, message_id: str) -> None:
        """One delivery attempt of a message this worker has claimed."""
        gw = self.gateway
        with self.gateway.write() as session:
            message = session.get(Message, message_id)
            if message is None or message.locked_by != self.worker_id:
                return
            now = utcnow()
            for stale in message.attempt_log:
                if stale.finished_at is None:  # a worker died during this try
                    stale.finished_at, stale.outcome = now, AttemptOutcome.TRANSIENT
                    stale.error_code, stale.error_reason = "interrupted", "the sending worker stopped during this try"
            number = len(message.attempt_log) + 1
            receiver = ParticipantId.parse(message.receiver or "", strict=False)
            document_type = DocumentTypeId.parse(message.document_type or "")
            process = ProcessId.parse(message.process or "")
            keep_id = reuse_message_id(message)
            blob_key = message.blob_key or ""

        try:
            endpoint = gw.discovery.find_endpoint(receiver, document_type, process)
        except DiscoveryError as exc:
            self._finish(message_id, number, classify_discovery(exc, message), None)
            return

        wire = self._wire(message, endpoint) if keep_id else None
        if wire is None:
            as4_id = message.as4_message_id if keep_id and message.as4_message_id else \
                new_message_id(gw.message_id_domain)
            built = self._build(blob_key, as4_id, endpoint)
            if isinstance(built, Failure):
                self._finish(message_id, number, built, None)
                return
            wire = built
        old_wire = message.wire_blob_key
        with self.gateway.write() as session:
            message = session.get(Message, message_id)
            if message is None or message.locked_by != self.worker_id:
                if wire.blob_key != old_wire:
                    gw.blobs.delete(wire.blob_key)
                return
            # stored before the POST: if this worker dies now, the next one resends these very bytes
            message.as4_message_id = wire.message_id
            message.wire_blob_key, message.wire_content_type = wire.blob_key, wire.content_type
            message.peer_endpoint_url = endpoint.endpoint_url
            message.peer_ap_cn = common_name(endpoint.certificate.subject) or None
            message.attempts = number
            session.add(Attempt(message_id=message_id, number=number, started_at=utcnow(),
                                endpoint_url=endpoint.endpoint_url))
        if old_wire and old_wire != wire.blob_key:
            gw.blobs.delete(old_wire)

        result = self._post(wire, endpoint)
        if isinstance(result, Failure) and result.code not in NOT_POSTED:
            # Peppol SMP: a sender may cache, but looks the receiver up again after a failed delivery
            gw.discovery.forget(receiver, document_type, process)
        self._finish(message_id, number, result, wire.message_id)

    def _wire(self, message: Message, endpoint: EndpointResult) -> Wire | None:
        """The stored body of the unanswered last try, if it went to this same endpoint and certificate."""
        if not (message.wire_blob_key and message.wire_content_type and message.as4_message_id):
            return None
        if (message.peer_endpoint_url != endpoint.endpoint_url
                or message.peer_ap_cn != (common_name(endpoint.certificate.subject) or None)):
            return None
        try:
            with self.gateway.blobs.open(message.wire_blob_key) as stored:
                references = signed_references(iter(lambda: stored.read(CHUNK), b""), message.wire_content_type)
        except (BlobNotFoundError, As4Error, safexml.XmlError) as exc:
            log.warning("stored AS4 body of %s unusable (%s); building it again", message.id, exc)
            return None
        return Wire(message.as4_message_id, message.wire_blob_key, message.wire_content_type, references)

    def _build(self, blob_key: str, as4_id: str, endpoint: EndpointResult) -> Wire | Failure:
        """Build the AS4 message for the stored SBD and store its HTTP body durably."""
        gw = self.gateway
        spill = gw.config.as4.spill_threshold_bytes
        try:
            with gw.blobs.open(blob_key) as source:
                header = parse_sbdh(source)
                source.seek(0)
                outgoing = build_message(sbd=source, sbdh=header, our_key=gw.key, recipient_cert=endpoint.certificate,
                                         message_id=as4_id, domain=gw.message_id_domain, spill_threshold=spill,
                                         now=utcnow())
            with outgoing:
                ref = gw.blobs.put(chunk_stream(outgoing.chunks()))
        except (SbdhError, ValueError, BoundaryCollisionError) as exc:
            return Failure(False, "build-error", f"the stored document cannot be packaged for AS4: {exc}",
                           "This is a fault of this access point, not of the document's receiver; report it to the "
                           "operator of this gateway.")
        return Wire(outgoing.message_id, ref.key, outgoing.content_type, outgoing.sent_references)

    def _post(self, wire: Wire, endpoint: EndpointResult) -> Verified | Failure:
        gw = self.gateway
        with gw.blobs.open(wire.blob_key) as body:
            length = os.fstat(body.fileno()).st_size
            try:
                chunks = iter(lambda: body.read(CHUNK), b"")
                answer = self.transport.post(endpoint.endpoint_url, wire.content_type, chunks, length)
            except TransportError as exc:
                failure = classify_transport(exc)
                if exc.retry_at is not None:
                    wait = max(0.0, exc.retry_at - time.monotonic())
                    failure = Failure(True, failure.code, failure.reason, failure.hint,
                                      not_before=utcnow() + timedelta(seconds=wait))
                return failure
        now = utcnow()
        result = judge_answer(answer, wire.message_id, wire.references, endpoint.certificate,
                              lambda cert: gw.validator.validate(cert, Purpose.AP_SIGNING, now))
        if not (isinstance(result, Failure) and result.code.startswith("http-")):
            self.transport.mark_healthy(endpoint.endpoint_url)
        return result

    def _finish(self, message_id: str, number: int, result: Verified | Failure, as4_id: str | None) -> None:
        stale_wire = self._record(message_id, number, result, as4_id)
        if stale_wire:
            self.gateway.blobs.delete(stale_wire)

    def _record(self, message_id: str, number: int, result: Verified | Failure, as4_id: str | None) -> str | None:
        """Write the outcome of a try; returns the key of a stored body that is no longer needed."""
        now = utcnow()
        stale_wire: str | None = None
        with self.gateway.write() as session:
            message = session.get(Message, message_id)
            if message is None or message.locked_by != self.worker_id:
                log.warning("outbound message %s was taken over by another worker; result dropped", message_id)
                return None
            attempt = next((a for a in message.attempt_log if a.number == number), None)
            if attempt is None:  # discovery failed: nothing was posted, the try is still recorded
                attempt = Attempt(message_id=message_id, number=number, started_at=now)
                message.attempt_log.append(attempt)
                message.attempts = number
            attempt.finished_at = now
            message.locked_by = message.locked_until = None
            answered = isinstance(result, Verified) or result.http_status is not None
            if answered and message.wire_blob_key:
                # the receiver has seen this MessageId: any next try is a new build under a new one
                stale_wire, message.wire_blob_key, message.wire_content_type = message.wire_blob_key, None, None
            if isinstance(result, Verified):
                attempt.outcome = AttemptOutcome.SENT
                attempt.http_status = 200
                message.state, message.sent_at, message.next_attempt_at = MessageState.SENT, now, None
                message.error_code = message.error_reason = message.error_hint = None
                message.receipt = Receipt(as4_message_id=result.receipt_message_id,
                                          ref_to_message_id=result.ref_to_message_id, raw=result.raw,
                                          sha256=hashlib.sha256(result.raw).hexdigest())
                record_event(session, message, webhooks.OUTBOUND_SENT, {
                    "as4_message_id": as4_id, "receiving_ap": message.peer_ap_cn, "attempts": number})
                log.info("outbound message sent", extra={"message_id": message_id, "as4_message_id": as4_id})
                return stale_wire
            attempt.outcome = AttemptOutcome.TRANSIENT if result.transient else AttemptOutcome.PERMANENT
            attempt.error_code, attempt.error_reason, attempt.http_status = result.code, result.reason, \
                result.http_status
            failures = sum(1 for a in message.attempt_log if a.outcome == AttemptOutcome.TRANSIENT)
            after = next_state(result, transient_failures=failures, attempts=number, deadline_at=message.deadline_at,
                               message_id=message_id, settings=self.settings, now=now, rng=self.rng)
            message.error_code, message.error_reason, message.error_hint = result.code, after.reason, after.hint
            data = {"reason": after.reason, "hint": after.hint, "error_code": result.code, "attempts": number}
            message.state, message.next_attempt_at = after.state, after.retry_at
            if after.retry_at is not None:
                record_event(session, message, webhooks.OUTBOUND_RETRYING,
                             {**data, "next_attempt_at": after.retry_at.isoformat()})
            else:
                record_event(session, message, webhooks.OUTBOUND_FAILED, data)
            log.info("outbound attempt failed", extra={"message_id": message_id, "error_code": result.code,
                                                       "state": str(message.state)})
        return stale_wire


# One Sender per gateway in this process: connections and circuit breakers outlive one worker round.
_senders: dict[int, tuple[Gateway, Sender]] = {}
_senders_lock = threading.Lock()


def sender_for(gateway: Gateway) -> Sender:
    with _senders_lock:
        entry = _senders.get(id(gateway))
        if entry is None or entry[0] is not gateway:
            entry = (gateway, Sender(gateway))
            _senders[id(gateway)] = entry
        return entry[1]


def send_due(gateway: Gateway) -> int:
    """Worker task: send what is due; the number of messages handled."""
    return sender_for(gateway).send_due()


def send_one(gateway: Gateway, message_id: str) -> bool:
    """Send one message now if it is due and no other worker holds it (`peppol-ap send --wait`)."""
    return sender_for(gateway).send_one(message_id)


def retry_failed(session: Session, message: Message, deadline: timedelta, actor: Actor) -> None:
    """Put a failed message back in the queue (POST .../retry), written to the audit log for `actor`; the sender
    picks the MessageId rule."""
    if message.state != MessageState.FAILED:
        raise ValueError(f"only a failed message can be retried; this one is {message.state}")
    before = message_snapshot(message)
    now = utcnow()
    message.state, message.next_attempt_at, message.deadline_at = MessageState.QUEUED, now, now + deadline
    message.error_code = message.error_reason = message.error_hint = None
    audit.record(session, actor, AUDIT_RETRY, audit.MESSAGE, message.id, before=before,
                 after=message_snapshot(message))
