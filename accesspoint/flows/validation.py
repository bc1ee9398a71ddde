"""BIS validation in the flows: of a submitted document before it is queued (the outbound check in
accesspoint.flows.submission), of a received one after its receipt has left (a post-receipt action that marks the
message, and the worker task `validate_due` that validates it), and for `peppol-ap validate`.

The engine and the rules are adapters (accesspoint.adapters.validation); what a report says is the core's
(accesspoint.core.validation). This module decides what a report means for a message: stored with it as JSON,
told to the network by the `inbound.validated` webhook event.
"""

from __future__ import annotations

import io
import logging
from datetime import date, datetime, timedelta
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from accesspoint.adapters.validation import NotXml, RulesUnavailable
from accesspoint.core.sbdh import SBDH_NS, Sbdh, SbdhError, iter_business_document, locate_business_document
from accesspoint.core.validation import Report, Status
from accesspoint.flows.webhooks import INBOUND_VALIDATED, record_event
from accesspoint.gateway import Gateway
from accesspoint.store.database import claim
from accesspoint.store.models import Direction, Message, ValidationMode
from accesspoint.store.types import utcnow
from base.safexml import XmlError, iterparse

log = logging.getLogger(__name__)

# inbound messages validated per worker round, and how long a claim lasts before another worker may take it over
BATCH = 20
LEASE = timedelta(minutes=5)
# a message whose validation cannot run (rules missing, say) is tried again this much later, not every round
RETRY = timedelta(minutes=5)
_SBD_ROOT = f"{{{SBDH_NS}}}StandardBusinessDocument"


def _is_sbd(document: bytes) -> bool:
    try:
        for _event, element in iterparse(io.BytesIO(document), events=("start",)):
            return bool(element.tag == _SBD_ROOT)
    except (etree.XMLSyntaxError, XmlError) as exc:
        raise NotXml(f"not well-formed XML: {exc}") from None
    raise NotXml("the document is empty")


def business_document(document: bytes) -> bytes:
    """The document to validate: a bare UBL document as it is, or the business document inside a complete SBD
    (copied out of the SBD's bytes, not re-serialised). Raises NotXml."""
    if not _is_sbd(document):
        return document
    stream = io.BytesIO(document)
    try:
        return b"".join(iter_business_document(stream, locate_business_document(stream)))
    except SbdhError as exc:
        raise NotXml(str(exc)) from None


def validate_document(gateway: Gateway, document: bytes, today: date | None = None) -> Report | None:
    """The report for a UBL document or a complete SBD, with the release in force `today` (default: the current
    UTC date); None when it is of no configured document type. Raises NotXml and RulesUnavailable."""
    return gateway.bis.validate(business_document(document), today or utcnow().date())


def report_json(report: Report | None, mode: ValidationMode | None = None) -> dict[str, Any]:
    """The `validation` object stored with a message and shown by the APIs and webhook events. A document sent
    despite fatal findings (validation_mode = warn) carries `sent_despite_fatal_findings` and a `warning` line."""
    if report is None:
        return {"status": "not-validated", "detail": "no BIS validation is configured for this document type",
                "findings": []}
    data = report.to_dict()
    if mode is ValidationMode.WARN and report.status is Status.INVALID:
        data["sent_despite_fatal_findings"] = True
        data["warning"] = (f"sent although it is not BIS compliant ({len(report.fatal)} fatal finding(s)): the "
                           "organisation's validation_mode is 'warn'; the receiver may reject it")
    return data


# --- after receiving ------------------------------------------------------------------------------------------


def mark_for_validation(session: Session, message: Message, sbdh: Sbdh) -> None:
    """Post-receipt action: the worker validates the message (`validate_due`) after the receipt has left; the
    receipt answers transport and envelope only."""
    message.validation_due_at = message.received_at or utcnow()


def _due(now: datetime) -> Any:
    return (select(Message)
            .where(Message.direction == Direction.INBOUND, Message.validation_due_at <= now)
            .order_by(Message.validation_due_at).limit(BATCH))


def validate_due(gateway: Gateway) -> int:
    """Worker task: validate the received messages that are due, store each report with its message and record
    the `inbound.validated` event. Returns the number of messages handled."""
    now = utcnow()

    def lease(messages: list[Message]) -> None:
        for message in messages:
            message.validation_due_at = now + LEASE

    claimed = [(m.id, m.blob_key) for m in gateway.claim(lambda session: claim(session, _due(now), lease))]
    for message_id, blob_key in claimed:
        _validate_received(gateway, message_id, blob_key, now)
    return len(claimed)


def _validate_received(gateway: Gateway, message_id: str, blob_key: str | None, now: datetime) -> None:
    try:
        if blob_key is None:
            raise NotXml("the payload is no longer stored")
        with gateway.blobs.open(blob_key) as stream:
            sbd = stream.read()
        data = report_json(validate_document(gateway, sbd, now.date()))
    except RulesUnavailable as exc:
        log.error("inbound validation cannot run; retried later", extra={"message_id": message_id,
                                                                         "reason": str(exc)})
        with gateway.write() as session:
            message = session.get(Message, message_id)
            if message is not None:
                message.validation_due_at = now + RETRY
        return
    except (NotXml, FileNotFoundError) as exc:
        data = {"status": "not-validated", "detail": f"the business document cannot be validated: {exc}",
                "findings": []}
    with gateway.write() as session:
        message = session.get(Message, message_id)
        if message is None or message.organisation_id is None:
            return
        message.validation = data
        message.validation_due_at = None
        record_event(session, INBOUND_VALIDATED, message.organisation_id, message_id=message.id,
                     data={"message_id": message.id, "as4_message_id": message.as4_message_id, "validation": data})
