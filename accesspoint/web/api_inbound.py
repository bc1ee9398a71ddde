"""The inbox of the network API: documents other access points delivered to an organisation's participants.

Poll and acknowledge: `GET /api/v1/inbound?state=new` lists what is waiting, `GET .../{id}/document` fetches the
business document (`?format=sbd` the whole envelope as received), `POST .../{id}/ack` takes it out of the
`new` list. A token sees its own organisation's messages only; anything else is a 404, never a 403, so ids of
other organisations' messages cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from flask import Blueprint, Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from accesspoint.adapters.blobs import BlobNotFoundError
from accesspoint.core.sbdh import SbdhError, document_length, iter_business_document, locate_business_document
from accesspoint.flows.webhooks import INBOUND_ACKED, record_event
from accesspoint.store.models import INBOUND_STATES, Direction, Message, MessageState
from accesspoint.web import validation
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import (
    CURSOR_PARAMETER,
    LIMIT_PARAMETER,
    NULLABLE_STRING,
    NULLABLE_TIMESTAMP,
    SINCE_PARAMETER,
    TIMESTAMP,
    after,
    bad_request,
    cursor_parameter,
    encode_cursor,
    json_content,
    limit_parameter,
    page_schema,
    problem_responses,
    ref,
    since_parameter,
)
from accesspoint.web.problems import ProblemError

blueprint = Blueprint("api_inbound", __name__, url_prefix="/api/v1/inbound")

ORDERS = ("oldest", "newest")
FORMATS = ("document", "sbd")
XML = "application/xml"
SOAP_XML = "application/soap+xml"
_COPY_CHUNK = 64 * 1024


def _not_found(message_id: str) -> ProblemError:
    return ProblemError(404, "Not Found", f"no inbound message {message_id!r} for this organisation")


def _own_message(session: Session, message_id: str, *, for_update: bool = False) -> Message:
    query = select(Message).where(
        Message.id == message_id,
        Message.direction == Direction.INBOUND,
        Message.organisation_id == current_client().organisation_id,
    ).options(selectinload(Message.receipt))
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    message = session.scalar(query)
    if message is None:
        raise _not_found(message_id)
    return message


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def message_document(message: Message) -> dict[str, Any]:
    receipt = message.receipt
    return {
        "id": message.id,
        "state": message.state,
        "as4_message_id": message.as4_message_id,
        "conversation_id": message.conversation_id,
        "sbdh_instance_id": message.sbdh_instance_id,
        "sender": message.sender,
        "receiver": message.receiver,
        "document_type": message.document_type,
        "process": message.process,
        "country_c1": message.country_c1,
        "peer_ap_cn": message.peer_ap_cn,
        "sbd_size": message.payload_size,
        "sbd_sha256": message.payload_sha256,
        "document_size": message.document_size,
        "duplicate_of": message.duplicate_of,
        "received_at": (message.received_at or message.created_at).isoformat(),
        "acked_at": _iso(message.acked_at),
        "validation": validation.message_validation(message),
        "receipt": None if receipt is None else {
            "as4_message_id": receipt.as4_message_id,
            "sha256": receipt.sha256,
            "url": url_for("api_inbound.receipt", message_id=message.id),
        },
        "links": {
            "self": url_for("api_inbound.get_message", message_id=message.id),
            "document": url_for("api_inbound.document", message_id=message.id),
            "sbd": url_for("api_inbound.document", message_id=message.id, format="sbd"),
            "ack": url_for("api_inbound.ack", message_id=message.id),
        },
    }


def _choice(name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw not in allowed:
        raise bad_request(f"{name} must be one of {', '.join(allowed)}, not {raw!r}", name)
    return raw


@blueprint.get("")
@require_client()
def list_messages() -> ResponseReturnValue:
    state = _choice("state", tuple(INBOUND_STATES), None)
    order = _choice("order", ORDERS, "oldest") or "oldest"
    newest_first = order == "newest"
    since = since_parameter()
    limit = limit_parameter()
    position = cursor_parameter(order, str)
    query = (
        select(Message)
        .where(Message.direction == Direction.INBOUND,
               Message.organisation_id == current_client().organisation_id)
        .options(selectinload(Message.receipt))
    )
    if state is not None:
        query = query.where(Message.state == state)
    if since is not None:
        query = query.where(Message.created_at >= since)
    if position is not None:
        query = query.where(after(Message.created_at, Message.id, position, newest_first))
    if newest_first:
        query = query.order_by(Message.created_at.desc(), Message.id.desc())
    else:
        query = query.order_by(Message.created_at, Message.id)
    with gateway().read() as session:
        messages = list(session.scalars(query.limit(limit + 1)))
        page = messages[:limit]
        items = [message_document(message) for message in page]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id, order) if len(messages) > limit else None
    return jsonify(items=items, next_cursor=next_cursor)


@blueprint.get("/<message_id>")
@require_client()
def get_message(message_id: str) -> ResponseReturnValue:
    with gateway().read() as session:
        return jsonify(message_document(_own_message(session, message_id)))


def _open_sbd(message: Message) -> IO[bytes]:
    if not message.blob_key and message.state == MessageState.ACKED:
        raise ProblemError(410, "Gone", f"the document of inbound message {message.id} was removed after the "
                                        "retention period; its metadata and receipt are kept")
    if not message.blob_key:
        raise ProblemError(500, "Internal Server Error", f"inbound message {message.id} has no stored document; "
                                                         "the operator has to look into it")
    try:
        return gateway().blobs.open(message.blob_key)
    except BlobNotFoundError:
        raise ProblemError(500, "Internal Server Error", f"the stored document of inbound message {message.id} "
                                                         "is missing; the operator has to look into it") from None


def _chunks(stream: IO[bytes], parts: Iterator[bytes] | None = None) -> Iterator[bytes]:
    """Yield the parts (or the whole stream) and close the stream when the response is done or abandoned."""
    try:
        if parts is not None:
            yield from parts
            return
        while chunk := stream.read(_COPY_CHUNK):
            yield chunk
    finally:
        stream.close()


@blueprint.get("/<message_id>/document")
@require_client()
def document(message_id: str) -> ResponseReturnValue:
    """The business document (UTF-8, envelope removed) or, with `format=sbd`, the SBD exactly as received."""
    kind = _choice("format", FORMATS, "document")
    with gateway().read() as session:
        message = _own_message(session, message_id)
    stream = _open_sbd(message)
    headers = {"Cache-Control": "private, no-store"}
    if kind == "sbd":
        if message.payload_size is not None:
            headers["Content-Length"] = str(message.payload_size)
        if message.payload_sha256:
            headers["ETag"] = f'"{message.payload_sha256}"'
        return Response(_chunks(stream), mimetype=XML, headers=headers, direct_passthrough=True)
    try:
        span = locate_business_document(stream)
    except SbdhError as exc:
        stream.close()
        raise ProblemError(500, "Internal Server Error", f"the stored SBD of inbound message {message.id} cannot be "
                                                         f"read: {exc}; fetch it with format=sbd") from None
    except BaseException:
        stream.close()
        raise
    length = document_length(span)
    if length is not None:
        headers["Content-Length"] = str(length)
    return Response(_chunks(stream, iter_business_document(stream, span)), mimetype=XML, headers=headers,
                    direct_passthrough=True)


@blueprint.get("/<message_id>/receipt")
@require_client()
def receipt(message_id: str) -> ResponseReturnValue:
    """The signed AS4 receipt we returned to the sending access point, byte for byte (the evidence)."""
    with gateway().read() as session:
        message = _own_message(session, message_id)
        if message.receipt is None:
            raise ProblemError(404, "Not Found", f"inbound message {message_id!r} has no stored receipt")
        raw = message.receipt.raw
    return Response(raw, mimetype=SOAP_XML, headers={"Cache-Control": "private, no-store"})


@blueprint.post("/<message_id>/ack")
@require_client()
def ack(message_id: str) -> ResponseReturnValue:
    """Mark the message collected: state `acked` and the time; acking again changes nothing (idempotent)."""
    with gateway().write() as session:
        message = _own_message(session, message_id, for_update=True)
        if message.state != MessageState.ACKED:
            message.state = MessageState.ACKED
            message.acked_at = datetime.now(UTC)
            record_event(session, INBOUND_ACKED, current_client().organisation_id, message_id=message.id,
                         data={"message_id": message.id, "acked_by": current_client().name})
        return jsonify(message_document(message))  # the receipt is loaded while the session is open


# --- OpenAPI ----------------------------------------------------------------------------------------

_ID_PARAMETER = {"name": "message_id", "in": "path", "required": True, "description": "the message id",
                 "schema": {"type": "string"}}
_TAG = ["inbound"]

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/inbound": {
        "get": {
            "operationId": "listInbound",
            "tags": _TAG,
            "summary": "Inbound messages of the token's organisation",
            "description": "Paged by `cursor`. `order=oldest` (default) lists in arrival order, the order to "
                           "process and ack in; `order=newest` starts with the latest. Poll with `state=new`.",
            "parameters": [
                {"name": "state", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": [str(s) for s in INBOUND_STATES]}},
                {"name": "order", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(ORDERS), "default": "oldest"}},
                SINCE_PARAMETER, LIMIT_PARAMETER, CURSOR_PARAMETER,
            ],
            "responses": {"200": {"description": "a page of messages", "content": json_content(ref("InboundPage"))},
                          **problem_responses(400, 401, 403)},
        },
    },
    "/api/v1/inbound/{message_id}": {
        "get": {
            "operationId": "getInbound",
            "tags": _TAG,
            "summary": "Metadata of one inbound message",
            "parameters": [_ID_PARAMETER],
            "responses": {"200": {"description": "the message", "content": json_content(ref("InboundMessage"))},
                          **problem_responses(401, 403, 404)},
        },
    },
    "/api/v1/inbound/{message_id}/document": {
        "get": {
            "operationId": "getInboundDocument",
            "tags": _TAG,
            "summary": "The business document, or the whole SBD",
            "description": "Default: the business document alone (the UBL invoice), as UTF-8 XML; the bytes are "
                           "those inside the envelope, with the namespace declarations it inherited from the "
                           "envelope added to its root. `format=sbd`: the Standard Business Document exactly as "
                           "received (its sha256 is `sbd_sha256`).",
            "parameters": [_ID_PARAMETER,
                           {"name": "format", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": list(FORMATS), "default": "document"}}],
            "responses": {"200": {"description": "the XML document",
                                  "content": {XML: {"schema": {"type": "string"}}}},
                          **problem_responses(400, 401, 403, 404)},
        },
    },
    "/api/v1/inbound/{message_id}/receipt": {
        "get": {
            "operationId": "getInboundReceipt",
            "tags": _TAG,
            "summary": "The signed AS4 receipt we sent for the message (non-repudiation evidence)",
            "parameters": [_ID_PARAMETER],
            "responses": {"200": {"description": "the SOAP envelope of the receipt, byte for byte",
                                  "content": {SOAP_XML: {"schema": {"type": "string"}}}},
                          **problem_responses(401, 403, 404)},
        },
    },
    "/api/v1/inbound/{message_id}/ack": {
        "post": {
            "operationId": "ackInbound",
            "tags": _TAG,
            "summary": "Acknowledge a message as collected (idempotent)",
            "description": "Sets `state` to `acked` and `acked_at`, and creates an `inbound.acked` event the "
                           "first time; acking again answers the same without changing anything.",
            "parameters": [_ID_PARAMETER],
            "responses": {"200": {"description": "the acknowledged message",
                                  "content": json_content(ref("InboundMessage"))},
                          **problem_responses(401, 403, 404)},
        },
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "InboundMessage": {
        "type": "object",
        "required": ["id", "state", "as4_message_id", "sender", "receiver", "document_type", "process",
                     "received_at", "acked_at", "receipt", "links"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": [str(s) for s in INBOUND_STATES],
                      "description": "`new` until acknowledged, then `acked`"},
            "as4_message_id": NULLABLE_STRING,
            "conversation_id": NULLABLE_STRING,
            "sbdh_instance_id": NULLABLE_STRING,
            "sender": {**NULLABLE_STRING, "description": "participant `scheme::value`"},
            "receiver": {**NULLABLE_STRING, "description": "participant `scheme::value`"},
            "document_type": {**NULLABLE_STRING, "description": "document type `scheme::value`"},
            "process": {**NULLABLE_STRING, "description": "process `scheme::value`"},
            "country_c1": NULLABLE_STRING,
            "peer_ap_cn": {**NULLABLE_STRING, "description": "CN of the sending access point's certificate"},
            "sbd_size": {"type": ["integer", "null"], "description": "bytes of the SBD as received"},
            "sbd_sha256": NULLABLE_STRING,
            "document_size": {"type": ["integer", "null"]},
            "duplicate_of": {**NULLABLE_STRING, "description": "an earlier message with the same SBDH "
                                                               "InstanceIdentifier"},
            "received_at": TIMESTAMP,
            "acked_at": NULLABLE_TIMESTAMP,
            "validation": validation.VALIDATION_SCHEMA,
            "receipt": {
                "oneOf": [
                    {"type": "null"},
                    {"type": "object", "required": ["as4_message_id", "sha256", "url"],
                     "properties": {"as4_message_id": {"type": "string"}, "sha256": {"type": "string"},
                                    "url": {"type": "string"}}},
                ],
            },
            "links": {
                "type": "object",
                "required": ["self", "document", "sbd", "ack"],
                "properties": {name: {"type": "string"} for name in ("self", "document", "sbd", "ack")},
            },
        },
    },
    "InboundPage": page_schema("InboundMessage"),
}
