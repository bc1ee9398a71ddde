"""The network API for sending: submit, status, list, receipt, retry, and "can this receiver take this document?".

    POST /api/v1/outbound                    submit a UBL invoice / credit note or a complete SBD -> 202 + Location
    GET  /api/v1/outbound?state=failed       list the organisation's outbound messages, newest first
    GET  /api/v1/outbound/{id}               state, attempts, receiving AP, reason + hint on failure
    GET  /api/v1/outbound/{id}/receipt       the receiving AP's signed AS4 receipt, byte for byte
    POST /api/v1/outbound/{id}/retry         queue a failed message again
    GET  /api/v1/lookup/{participant}        can the participant receive this document type over Peppol, and where

Every view needs a network token; an organisation sees only its own messages (another's id is a 404, so ids
cannot be probed).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select, tuple_

from accesspoint.config import SendingSettings
from accesspoint.flows import submission
from accesspoint.flows.sending import document_name, retry_failed
from accesspoint.flows.submission import DocumentTooLarge, RulesNotInstalled, SubmissionError, ValidationRefused
from accesspoint.store.audit import Actor
from accesspoint.store.models import (
    BIS_BILLING_INVOICE,
    BIS_BILLING_PROCESS,
    OUTBOUND_STATES,
    Direction,
    Message,
    MessageState,
)
from accesspoint.web import validation
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.problems import ProblemError
from certs.names import common_name
from smp.errors import DiscoveryError, NotSupported, ParticipantNotRegistered
from smp.identifiers import DocumentTypeId, IdentifierError, ParticipantId, ProcessId

blueprint = Blueprint("api_outbound", __name__)


XML_TYPES = ("application/xml", "text/xml")
IDEMPOTENCY_KEY_MAX = 200
DEFAULT_PAGE = 50
MAX_PAGE = 200


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def message_json(message: Message) -> dict[str, Any]:
    """The status document of an outbound message."""
    body: dict[str, Any] = {
        "id": message.id,
        "state": message.state,
        "sender": message.sender,
        "receiver": message.receiver,
        "document_type": message.document_type,
        "process": message.process,
        "country_c1": message.country_c1,
        "sbdh_instance_identifier": message.sbdh_instance_id,
        "as4_message_id": message.as4_message_id,
        "created_at": _iso(message.created_at),
        "updated_at": _iso(message.updated_at),
        "sent_at": _iso(message.sent_at),
        "next_attempt_at": _iso(message.next_attempt_at) if message.state in (
            MessageState.QUEUED, MessageState.RETRYING) else None,
        "deadline_at": _iso(message.deadline_at),
        "receiving_ap": ({"seat_id": message.peer_ap_cn, "endpoint_url": message.peer_endpoint_url}
                         if message.peer_endpoint_url else None),
        "attempts": [
            {"number": a.number, "started_at": _iso(a.started_at), "finished_at": _iso(a.finished_at),
             "outcome": a.outcome, "error_code": a.error_code, "error": a.error_reason,
             "endpoint_url": a.endpoint_url, "http_status": a.http_status}
            for a in message.attempt_log
        ],
        "error_code": message.error_code,
        "reason": message.error_reason,
        "hint": message.error_hint,
        "validation": message.validation,
        "links": {"self": f"/api/v1/outbound/{message.id}"},
    }
    if message.state == MessageState.SENT:
        body["links"]["receipt"] = f"/api/v1/outbound/{message.id}/receipt"
    return body


def _own_message(session: Any, message_id: str) -> Message:
    message = session.get(Message, message_id)
    if (message is None or message.direction != Direction.OUTBOUND
            or message.organisation_id != current_client().organisation_id):
        raise ProblemError(404, "Not Found", f"no outbound message {message_id} of your organisation")
    return message


def _invalid(field: str, detail: str, code: str | None = None) -> ProblemError:
    extra: dict[str, Any] = {"field": field, "errors": [{"field": field, "detail": detail}]}
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


def _accepted(message: Message, replayed: bool) -> Response:
    response = jsonify(message_json(message))
    response.status_code = 202
    response.headers["Location"] = url_for("api_outbound.status", message_id=message.id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.post("/api/v1/outbound")
@require_client()
def submit() -> ResponseReturnValue:
    client = current_client()
    key = _idempotency_key()
    _media_type()
    try:
        accepted = submission.submit(gateway(), request.stream, declared_size=request.content_length,
                                     receiver=request.args.get("receiver") or None,
                                     organisation_id=client.organisation_id, api_client_id=client.id,
                                     idempotency_key=key)
    except DocumentTooLarge as exc:
        raise ProblemError(413, "Content Too Large", exc.detail) from None
    except ValidationRefused as exc:
        raise validation.refused(exc) from None
    except RulesNotInstalled as exc:
        raise validation.rules_missing(exc) from None
    except SubmissionError as exc:
        raise _invalid(exc.field, exc.detail, exc.code) from None
    return _accepted(accepted.message, replayed=accepted.replayed)


def _cursor(message: Message) -> str:
    raw = f"{message.created_at.isoformat()}|{message.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, _, message_id = raw.partition("|")
        return datetime.fromisoformat(created), message_id
    except (ValueError, UnicodeDecodeError):
        raise ProblemError(400, "Bad Request", "the 'after' cursor is not one this API handed out",
                           field="after") from None


@blueprint.get("/api/v1/outbound")
@require_client()
def list_messages() -> ResponseReturnValue:
    state = request.args.get("state")
    if state is not None and state not in OUTBOUND_STATES:
        raise ProblemError(400, "Bad Request", f"state must be one of {', '.join(OUTBOUND_STATES)}", field="state")
    try:
        limit = int(request.args.get("limit", DEFAULT_PAGE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise ProblemError(400, "Bad Request", f"limit must be a whole number from 1 to {MAX_PAGE}", field="limit")
    query = select(Message).where(Message.direction == Direction.OUTBOUND,
                                  Message.organisation_id == current_client().organisation_id)
    if state is not None:
        query = query.where(Message.state == state)
    after = request.args.get("after")
    if after:
        created, message_id = _parse_cursor(after)
        query = query.where(tuple_(Message.created_at, Message.id) < tuple_(created, message_id))
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
    with gateway().read() as session:
        rows = list(session.scalars(query))
        page = rows[:limit]
        body: dict[str, Any] = {"items": [message_json(m) for m in page]}
        if len(rows) > limit:
            body["next"] = _cursor(page[-1])
    return jsonify(body)


@blueprint.get("/api/v1/outbound/<message_id>")
@require_client()
def status(message_id: str) -> ResponseReturnValue:
    with gateway().read() as session:
        return jsonify(message_json(_own_message(session, message_id)))


@blueprint.get("/api/v1/outbound/<message_id>/receipt")
@require_client()
def receipt(message_id: str) -> ResponseReturnValue:
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
@require_client()
def retry(message_id: str) -> ResponseReturnValue:
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
        return _accepted(message, replayed=False)


@blueprint.get("/api/v1/lookup/<participant>")
@require_client()
def lookup(participant: str) -> ResponseReturnValue:
    try:
        pid = ParticipantId.parse(participant, strict=True)
    except IdentifierError as exc:
        raise _invalid("participant", str(exc)) from None
    try:
        doctype = DocumentTypeId.parse(request.args.get("doctype") or BIS_BILLING_INVOICE)
    except IdentifierError as exc:
        raise _invalid("doctype", str(exc)) from None
    try:
        process = ProcessId.parse(request.args.get("process") or BIS_BILLING_PROCESS)
    except IdentifierError as exc:
        raise _invalid("process", str(exc)) from None
    body: dict[str, Any] = {"participant": pid.uri, "document_type": doctype.uri, "process": process.uri}
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
        body.update(can_receive=False, reason=reason, detail=exc.message, hint=exc.hint, kind=exc.kind,
                    access_point=None)
        return jsonify(body)
    certificate = found.certificate
    body.update(can_receive=True, reason=None, access_point={
        "seat_id": common_name(certificate.subject) or None,
        "endpoint_url": found.endpoint_url,
        "transport_profile": found.transport_profile,
        "certificate_subject": found.certificate_subject,
        "certificate_not_after": _iso(certificate.not_valid_after_utc),
        "smp": found.smp_uri,
    })
    return jsonify(body)


# --------------------------------------------------------------------------- OpenAPI

def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


_ERRORS = {"401": _problem("missing, unknown or revoked token"), "403": _problem("not a network token")}
_MESSAGE = {"application/json": {"schema": {"$ref": "#/components/schemas/OutboundMessage"}}}
_ID = {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"}}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/outbound": {
        "post": {
            "summary": "Submit a document for a Peppol receiver",
            "description": "A UBL 2.1 invoice or credit note (the SBDH is derived from it) or a complete SBD. "
                           "Checked before anything is queued; 422 names the field that is wrong.",
            "operationId": "submitOutbound",
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
                 "description": "A repeated submit with the same key returns the first answer and never sends twice."},
                {"name": "receiver", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "Send a UBL document to this participant instead of its AccountingCustomerParty."},
            ],
            "requestBody": {"required": True, "content": {t: {"schema": {"type": "string"}} for t in XML_TYPES}},
            "responses": {
                "202": {"description": "queued", "content": _MESSAGE,
                        "headers": {"Location": {"schema": {"type": "string"}}}},
                "400": _problem("bad Idempotency-Key"), "413": _problem("document too large"),
                "415": _problem("not XML"), "422": _problem("the document cannot be sent; `field` says why, "
                                                            "`findings` lists every BIS validation finding"),
                "503": _problem("the BIS validation rules are not installed"), **_ERRORS,
            },
        },
        "get": {
            "summary": "List outbound messages, newest first",
            "operationId": "listOutbound",
            "parameters": [
                {"name": "state", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(OUTBOUND_STATES)}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}},
                {"name": "after", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "the `next` cursor of the previous page"},
            ],
            "responses": {
                "200": {"description": "a page", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["items"],
                    "properties": {"items": {"type": "array",
                                             "items": {"$ref": "#/components/schemas/OutboundMessage"}},
                                   "next": {"type": "string"}}}}}},
                "400": _problem("bad query parameter"), **_ERRORS,
            },
        },
    },
    "/api/v1/outbound/{message_id}": {
        "get": {
            "summary": "State of an outbound message",
            "operationId": "getOutbound",
            "parameters": [_ID],
            "responses": {"200": {"description": "the message", "content": _MESSAGE},
                          "404": _problem("no such message of your organisation"), **_ERRORS},
        },
    },
    "/api/v1/outbound/{message_id}/receipt": {
        "get": {
            "summary": "The signed AS4 receipt of a sent message (evidence)",
            "operationId": "getOutboundReceipt",
            "parameters": [_ID],
            "responses": {"200": {"description": "the receipt as received",
                                  "content": {"application/xml": {"schema": {"type": "string"}}}},
                          "404": _problem("no such message, or not sent"), **_ERRORS},
        },
    },
    "/api/v1/outbound/{message_id}/retry": {
        "post": {
            "summary": "Queue a failed message again",
            "operationId": "retryOutbound",
            "parameters": [_ID],
            "responses": {"202": {"description": "queued", "content": _MESSAGE},
                          "404": _problem("no such message of your organisation"),
                          "409": _problem("the message is not failed"), **_ERRORS},
        },
    },
    "/api/v1/lookup/{participant}": {
        "get": {
            "summary": "Can this participant receive this document over Peppol, and through which access point?",
            "operationId": "lookupReceiver",
            "parameters": [
                {"name": "participant", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^(iso6523-actorid-upis::)?[0-9]{4}:[A-Za-z0-9._~-]+$"},
                 "description": "e.g. 0007:5567321707 or iso6523-actorid-upis::0007:5567321707"},
                {"name": "doctype", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "document type identifier; default Peppol BIS Billing 3.0 invoice"},
                {"name": "process", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "process identifier; default Peppol BIS Billing 3.0"},
            ],
            "responses": {
                "200": {"description": "the answer", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/LookupResult"}}}},
                "422": _problem("invalid identifier"), "503": _problem("discovery temporarily unavailable"),
                **_ERRORS,
            },
        },
    },
}

_NULLABLE_STRING = {"type": ["string", "null"]}
OPENAPI_SCHEMAS: dict[str, Any] = {
    "OutboundMessage": {
        "type": "object",
        "required": ["id", "state", "attempts", "links"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": list(OUTBOUND_STATES)},
            "sender": _NULLABLE_STRING, "receiver": _NULLABLE_STRING, "document_type": _NULLABLE_STRING,
            "process": _NULLABLE_STRING, "country_c1": _NULLABLE_STRING,
            "sbdh_instance_identifier": _NULLABLE_STRING, "as4_message_id": _NULLABLE_STRING,
            "created_at": _NULLABLE_STRING, "updated_at": _NULLABLE_STRING, "sent_at": _NULLABLE_STRING,
            "next_attempt_at": _NULLABLE_STRING, "deadline_at": _NULLABLE_STRING,
            "receiving_ap": {"type": ["object", "null"], "properties": {
                "seat_id": _NULLABLE_STRING, "endpoint_url": _NULLABLE_STRING}},
            "attempts": {"type": "array", "items": {"type": "object", "properties": {
                "number": {"type": "integer"}, "started_at": _NULLABLE_STRING, "finished_at": _NULLABLE_STRING,
                "outcome": _NULLABLE_STRING, "error_code": _NULLABLE_STRING, "error": _NULLABLE_STRING,
                "endpoint_url": _NULLABLE_STRING, "http_status": {"type": ["integer", "null"]}}}},
            "error_code": _NULLABLE_STRING,
            "reason": {"type": ["string", "null"], "description": "why the message failed or is retrying"},
            "hint": {"type": ["string", "null"], "description": "what a person can do about it"},
            "validation": validation.VALIDATION_SCHEMA,
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "LookupResult": {
        "type": "object",
        "required": ["participant", "document_type", "process", "can_receive"],
        "properties": {
            "participant": {"type": "string"}, "document_type": {"type": "string"}, "process": {"type": "string"},
            "can_receive": {"type": "boolean"},
            "reason": _NULLABLE_STRING, "detail": _NULLABLE_STRING, "hint": _NULLABLE_STRING,
            "kind": _NULLABLE_STRING,
            "access_point": {"type": ["object", "null"], "properties": {
                "seat_id": _NULLABLE_STRING, "endpoint_url": {"type": "string"},
                "transport_profile": {"type": "string"}, "certificate_subject": {"type": "string"},
                "certificate_not_after": {"type": "string"}, "smp": {"type": "string"}}},
        },
    },
}
