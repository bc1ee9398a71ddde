"""The inbox of the network API: documents other access points delivered to an organisation's participants.

Poll and acknowledge: `GET /api/v1/inbound?state=new` lists what is waiting, `GET .../{id}/document` fetches the
business document (`?format=sbd` the whole envelope as received), `POST .../{id}/ack` takes it out of the
`new` list. A token sees its own organisation's messages only; anything else is a 404, never a 403, so ids of
other organisations' messages cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from accesspoint.adapters.blobs import BlobNotFoundError
from accesspoint.core.sbdh import SbdhError, document_length, iter_business_document, locate_business_document
from accesspoint.flows.webhooks import INBOUND_ACKED, record_event
from accesspoint.store.models import Direction, Message, MessageState
from accesspoint.store.scopes import Scope
from accesspoint.web.apidoc import INVOICE_XML, NETWORK, RECEIPT_XML, xml_body
from accesspoint.web.auth import current_client, require_client
from accesspoint.web.context import gateway
from accesspoint.web.listing import fetch_page, link_header
from accesspoint.web.messages import filtered, inbound_message
from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas.messages import DocumentQuery, InboundMessage, InboundPage, InboundQuery

blueprint = Blueprint("api_inbound", __name__, url_prefix="/api/v1/inbound")

TAGS = ("inbound",)
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


@blueprint.get("")
@require_client(Scope.INBOUND_READ)
@NETWORK.operation("listInbound", tags=TAGS, query=InboundQuery, responses={200: InboundPage}, problems=(401, 403))
def list_messages(query: InboundQuery) -> ResponseReturnValue:
    """Inbound messages of the token's organisation

    `order=oldest` (default) lists in arrival order, the order to process and ack in; `order=newest` starts with
    the latest. Poll with `state=new`; the other filters find a message (`document_id` is the invoice number).
    """
    rows = filtered(select(Message).where(Message.direction == Direction.INBOUND,
                                          Message.organisation_id == current_client().organisation_id)
                    .options(selectinload(Message.receipt)), query)
    with gateway().read() as session:
        messages, next_page = fetch_page(session, rows, query, created=Message.created_at, key=Message.id,
                                         newest_first=query.order == "newest")
        items = [inbound_message(message) for message in messages]
    return InboundPage(items=items, next=next_page), 200, link_header(next_page)


@blueprint.get("/<message_id>")
@require_client(Scope.INBOUND_READ)
@NETWORK.operation("getInbound", tags=TAGS, responses={200: InboundMessage}, problems=(401, 403, 404))
def get_message(message_id: str) -> ResponseReturnValue:
    """Metadata of one inbound message"""
    with gateway().read() as session:
        return inbound_message(_own_message(session, message_id))


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
@require_client(Scope.INBOUND_READ)
@NETWORK.operation("getInboundDocument", tags=TAGS, query=DocumentQuery, responses={200: None},
                   problems=(401, 403, 404, 410), extra=xml_body(XML, "the XML document", INVOICE_XML))
def document(message_id: str, query: DocumentQuery) -> ResponseReturnValue:
    """The business document, or the whole SBD

    Default: the business document alone (the UBL invoice), as UTF-8 XML; the bytes are those inside the envelope,
    with the namespace declarations it inherited from the envelope added to its root. `format=sbd`: the Standard
    Business Document exactly as received (its sha256 is `sbd_sha256`). 410 once retention removed it.
    """
    kind = query.format
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
@require_client(Scope.INBOUND_READ)
@NETWORK.operation("getInboundReceipt", tags=TAGS, responses={200: None}, problems=(401, 403, 404),
                   extra=xml_body(SOAP_XML, "the SOAP envelope of the receipt, byte for byte", RECEIPT_XML))
def receipt(message_id: str) -> ResponseReturnValue:
    """The signed AS4 receipt we sent for the message (non-repudiation evidence), byte for byte"""
    with gateway().read() as session:
        message = _own_message(session, message_id)
        if message.receipt is None:
            raise ProblemError(404, "Not Found", f"inbound message {message_id!r} has no stored receipt")
        raw = message.receipt.raw
    return Response(raw, mimetype=SOAP_XML, headers={"Cache-Control": "private, no-store"})


@blueprint.post("/<message_id>/ack")
@require_client(Scope.INBOUND_ACK)
@NETWORK.operation("ackInbound", tags=TAGS, responses={200: InboundMessage}, problems=(401, 403, 404))
def ack(message_id: str) -> ResponseReturnValue:
    """Acknowledge a message as collected (idempotent)

    Sets `state` to `acked` and `acked_at`, and creates an `inbound.acked` event the first time; acking again
    answers the same without changing anything.
    """
    with gateway().write() as session:
        message = _own_message(session, message_id, for_update=True)
        if message.state != MessageState.ACKED:
            message.state = MessageState.ACKED
            message.acked_at = datetime.now(UTC)
            record_event(session, INBOUND_ACKED, current_client().organisation_id, message_id=message.id,
                         data={"message_id": message.id, "acked_by": current_client().name})
        return inbound_message(message)  # the receipt is loaded while the session is open
