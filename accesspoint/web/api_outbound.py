"""The network API for sending: submit, status, list, receipt, retry, and "can this receiver take this document?".

    POST /api/v1/outbound                    submit a UBL invoice / credit note or a complete SBD -> 202 + Location
    GET  /api/v1/outbound?state=failed       list the organisation's outbound messages (filters), newest first
    GET  /api/v1/outbound/{id}               state, attempts, receiving AP, reason + hint on failure
    GET  /api/v1/outbound/{id}/receipt       the receiving AP's signed AS4 receipt, byte for byte
    POST /api/v1/outbound/{id}/retry         queue a failed message again
    GET  /api/v1/lookup/{participant}        can the participant receive this document type over Peppol, and where

Every view needs a network token; an organisation sees only its own messages (another's id is a 404, so ids
cannot be probed).
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from accesspoint.config import SendingSettings
from accesspoint.flows import submission
from accesspoint.flows.sending import document_name, retry_failed
from accesspoint.flows.submission import (
    DocumentTooLarge,
    IdempotencyKeyReused,
    RulesNotInstalled,
    SubmissionError,
    ValidationRefused,
)
from accesspoint.health import worker_missing
from accesspoint.store.audit import Actor
from accesspoint.store.models import BIS_BILLING_INVOICE, BIS_BILLING_PROCESS, Direction, Message, MessageState
from accesspoint.store.scopes import Scope
from accesspoint.store.types import utcnow
from accesspoint.web import validation
from accesspoint.web.apidoc import INVOICE_XML, LOCATION_HEADER, NETWORK, RECEIPT_XML, xml_body
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.messages import filtered, outbound_message
from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas.lookup import LookupQuery, LookupResult, ReceivingAccessPoint
from accesspoint.web.schemas.messages import OutboundMessage, OutboundPage, OutboundQuery, SubmitQuery
from certs.names import common_name
from smp.errors import DiscoveryError, NotSupported, ParticipantNotRegistered
from smp.identifiers import DocumentTypeId, IdentifierError, ParticipantId, ProcessId

blueprint = Blueprint("api_outbound", __name__)

TAGS = ("outbound",)
XML_TYPES = ("application/xml", "text/xml")
IDEMPOTENCY_KEY_MAX = 200
_ACCEPTED = {"202": {"headers": LOCATION_HEADER}}


def _own_message(session: Any, message_id: str) -> Message:
    message = session.get(Message, message_id, options=[selectinload(Message.receipt)])
    if (message is None or message.direction != Direction.OUTBOUND
            or message.organisation_id != current_client().organisation_id):
        raise ProblemError(404, "Not Found", f"no outbound message {message_id} of your organisation")
    return message


def _invalid(field: str, detail: str, code: str | None = None) -> ProblemError:
    extra: dict[str, Any] = {"field": field, "errors": [{"field": field, "message": detail}]}
    if code:
        extra["code"] = code
    return ProblemError(422, "Unprocessable document", f"{field}: {detail}", **extra)


def _media_type() -> None:
    media_type = (request.mimetype or "").lower()
    if media_type not in XML_TYPES:
        raise ProblemError(415, "Unsupported Media Type", f"send the document as application/xml, not "
                                                          f"{media_type or 'without a Content-Type'}")


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        raise ProblemError(400, "Bad Request", f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} printable ASCII "
                                               "characters", field="Idempotency-Key")
    return key


def _no_worker(session: Session) -> bool:
    return worker_missing(gateway(), session, utcnow())


def _accepted(session: Session, message: Message, replayed: bool) -> ResponseReturnValue:
    headers = {"Location": url_for("api_outbound.status", message_id=message.id)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return outbound_message(message, no_worker=_no_worker(session)), 202, headers


_SUBMIT_EXTRA = {
    "description": "A UBL 2.1 invoice or credit note (the SBDH is derived from it) or a complete SBD. Checked "
                   "before anything is queued; 422 names the field that is wrong.",
    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
                    "description": "A repeated submit with the same key and the same document (and receiver) "
                                   "returns the first answer (Idempotent-Replayed: true) and never sends twice; the "
                                   "key with another document is refused with 422."}],
    "requestBody": {"required": True, "content": {media_type: {"schema": {"type": "string"}, "example": INVOICE_XML}
                                                  for media_type in XML_TYPES}},
    "responses": {"202": {"headers": {**LOCATION_HEADER, "Idempotent-Replayed": {
        "description": "`true` when the answer is the first one of this Idempotency-Key",
        "schema": {"type": "string"}}}}},
}


@blueprint.post("/api/v1/outbound")
@require_client(Scope.OUTBOUND_WRITE)
@NETWORK.operation("submitOutbound", tags=TAGS, query=SubmitQuery, responses={202: OutboundMessage},
                   problems=(401, 403, 413, 415, 422, 503), extra=_SUBMIT_EXTRA)
def submit(query: SubmitQuery) -> ResponseReturnValue:
    """Submit a document for a Peppol receiver"""
    client = current_client()
    key = _idempotency_key()
    _media_type()
    try:
        accepted = submission.submit(gateway(), request.stream, declared_size=request.content_length,
                                     receiver=query.receiver or None,
                                     organisation_id=client.organisation_id, api_client_id=client.id,
                                     idempotency_key=key)
    except DocumentTooLarge as exc:
        raise ProblemError(413, "Content Too Large", exc.detail) from None
    except IdempotencyKeyReused as exc:
        # draft-ietf-httpapi-idempotency-key-header, "Error Scenarios": a key reused with another payload is a 422
        raise ProblemError(422, "Idempotency-Key is already used",
                           f"Idempotency-Key {exc.key!r} was used for another request (message {exc.earlier.id}); "
                           "a key stands for one submission: send a new document with a new key",
                           field="Idempotency-Key", idempotency_key=exc.key, message_id=exc.earlier.id) from None
    except ValidationRefused as exc:
        raise validation.refused(exc) from None
    except RulesNotInstalled as exc:
        raise validation.rules_missing(exc) from None
    except SubmissionError as exc:
        raise _invalid(exc.field, exc.detail, exc.code) from None
    with gateway().read() as session:
        return _accepted(session, _own_message(session, accepted.message.id), replayed=accepted.replayed)


@blueprint.get("/api/v1/outbound")
@require_client(Scope.OUTBOUND_READ)
@NETWORK.operation("listOutbound", tags=TAGS, query=OutboundQuery, responses={200: OutboundPage},
                   problems=(401, 403))
def list_messages(query: OutboundQuery) -> ResponseReturnValue:
    """The organisation's outbound messages, newest first

    Filter by state (`failed` for what needs attention), sender, receiver, document type, creation time and the
    business document's own ID (`document_id`, the invoice number).
    """
    rows = filtered(select(Message).where(Message.direction == Direction.OUTBOUND,
                                          Message.organisation_id == current_client().organisation_id)
                    .options(selectinload(Message.receipt), selectinload(Message.attempt_log)), query)
    with gateway().read() as session:
        messages, next_page = fetch_page(session, rows, query, created=Message.created_at, key=Message.id,
                                         newest_first=query.order == "newest")
        no_worker = _no_worker(session)
        items = [outbound_message(message, no_worker=no_worker) for message in messages]
    return OutboundPage(items=items, next=next_page), 200, link_header(next_page)


@blueprint.get("/api/v1/outbound/<message_id>")
@require_client(Scope.OUTBOUND_READ)
@NETWORK.operation("getOutbound", tags=TAGS, responses={200: OutboundMessage}, problems=(401, 403, 404))
def status(message_id: str) -> ResponseReturnValue:
    """State of an outbound message: attempts, receiving AP, reason and hint on failure"""
    with gateway().read() as session:
        return outbound_message(_own_message(session, message_id), no_worker=_no_worker(session))


@blueprint.get("/api/v1/outbound/<message_id>/receipt")
@require_client(Scope.OUTBOUND_READ)
@NETWORK.operation("getOutboundReceipt", tags=TAGS, responses={200: None}, problems=(401, 403, 404),
                   extra=xml_body("application/xml", "the receiving AP's signed receipt, byte for byte", RECEIPT_XML))
def receipt(message_id: str) -> ResponseReturnValue:
    """The signed AS4 receipt of a sent message (evidence)"""
    with gateway().read() as session:
        message = _own_message(session, message_id)
        if message.receipt is None:
            raise ProblemError(404, "Not Found", f"message {message_id} has no receipt: it is {message.state}",
                               state=message.state)
        response = Response(message.receipt.raw, mimetype="application/xml")
        response.headers["Content-Disposition"] = f'attachment; filename="receipt-{message_id}.xml"'
        response.headers["Digest"] = "sha-256=" + base64.b64encode(bytes.fromhex(message.receipt.sha256)).decode()
        return response


@blueprint.post("/api/v1/outbound/<message_id>/retry")
@require_client(Scope.OUTBOUND_WRITE)
@NETWORK.operation("retryOutbound", tags=TAGS, responses={202: OutboundMessage}, problems=(401, 403, 404, 409),
                   extra={"responses": _ACCEPTED})
def retry(message_id: str) -> ResponseReturnValue:
    """Queue a failed message again"""
    gw = gateway()
    deadline = SendingSettings.from_config(gw.config).deadline
    with gw.write() as session:
        message = _own_message(session, message_id)
        if message.state != MessageState.FAILED:
            raise ProblemError(409, "Conflict", f"only a failed message can be retried; message {message_id} is "
                                                f"{message.state}", state=message.state)
        if message.blob_key is None:
            raise ProblemError(409, "Conflict", f"message {message_id} cannot be retried: its document was removed "
                                                "after the retention period; submit it again", state=message.state)
        retry_failed(session, message, deadline, Actor.of_client(current_client()))
        return _accepted(session, message, replayed=False)


def _identifier(kind: Any, field: str, text: str, **options: Any) -> Any:
    try:
        return kind.parse(text, **options)
    except IdentifierError as exc:
        raise _invalid(field, str(exc)) from None


@blueprint.get("/api/v1/lookup/<participant>")
@require_client(Scope.OUTBOUND_READ)
@NETWORK.operation("lookupReceiver", tags=("lookup",), query=LookupQuery, responses={200: LookupResult},
                   problems=(401, 403, 422, 503))
def lookup(participant: str, query: LookupQuery) -> ResponseReturnValue:
    """Can this participant receive this document over Peppol, and through which access point?

    `participant` is `0007:5567321707` or `iso6523-actorid-upis::0007:5567321707`; an invalid identifier is a 422
    naming the `field`.
    """
    pid = _identifier(ParticipantId, "participant", participant, strict=True)
    doctype = _identifier(DocumentTypeId, "doctype", query.doctype or BIS_BILLING_INVOICE)
    process = _identifier(ProcessId, "process", query.process or BIS_BILLING_PROCESS)
    asked = {"participant": pid.uri, "document_type": doctype.uri, "process": process.uri}
    try:
        found = gateway().discovery.find_endpoint(pid, doctype, process)
    except DiscoveryError as exc:
        if exc.retryable:
            raise ProblemError(503, "Service Unavailable", f"the lookup cannot be completed right now: {exc.message}",
                               hint=exc.hint, headers={"Retry-After": "30"}) from None
        if isinstance(exc, ParticipantNotRegistered):
            reason = f"{pid.value} is not registered in Peppol"
        elif isinstance(exc, NotSupported):
            reason = f"the receiver's SMP has no endpoint for {document_name(doctype.uri, process.uri)}"
        else:
            reason = exc.message
        return LookupResult(**asked, can_receive=False, reason=reason, detail=exc.message, hint=exc.hint,
                            kind=exc.kind)
    certificate = found.certificate
    return LookupResult(**asked, can_receive=True, access_point=ReceivingAccessPoint(
        seat_id=common_name(certificate.subject) or None, endpoint_url=found.endpoint_url,
        transport_profile=found.transport_profile, certificate_subject=found.certificate_subject,
        certificate_not_after=certificate.not_valid_after_utc, smp=found.smp_uri))
