"""Stored messages as the APIs show them (accesspoint.web.schemas.messages), and the filters of their lists."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy import Select, func

from accesspoint.health import NO_WORKER_HINT
from accesspoint.store.models import Direction, Message, MessageState
from accesspoint.web.schemas.messages import (
    AccessPoint,
    AdminMessage,
    Attempt,
    InboundLinks,
    InboundMessage,
    MessageQuery,
    OutboundLinks,
    OutboundMessage,
    ReceiptRef,
)
from accesspoint.web.validation import message_validation


def message_fields(message: Message, receipt_endpoint: str) -> dict[str, Any]:
    """The fields both directions share (schemas.messages.MessageFields)."""
    receipt = message.receipt
    return {
        "id": message.id, "state": message.state, "sender": message.sender, "receiver": message.receiver,
        "document_type": message.document_type, "process": message.process, "country_c1": message.country_c1,
        "document_id": message.document_id, "sbdh_instance_id": message.sbdh_instance_id,
        "as4_message_id": message.as4_message_id, "conversation_id": message.conversation_id,
        "sbd_size": message.payload_size, "sbd_sha256": message.payload_sha256,
        "document_size": message.document_size, "created_at": message.created_at,
        "validation": message_validation(message),
        "receipt": None if receipt is None else ReceiptRef(
            as4_message_id=receipt.as4_message_id, sha256=receipt.sha256,
            url=url_for(receipt_endpoint, message_id=message.id)),
    }


def inbound_message(message: Message) -> InboundMessage:
    return InboundMessage(
        **message_fields(message, "api_inbound.receipt"),
        sending_ap=AccessPoint(seat_id=message.peer_ap_cn) if message.peer_ap_cn else None,
        duplicate_of=message.duplicate_of,
        received_at=message.received_at or message.created_at,
        acked_at=message.acked_at,
        links=InboundLinks(
            self=url_for("api_inbound.get_message", message_id=message.id),
            document=url_for("api_inbound.document", message_id=message.id),
            sbd=url_for("api_inbound.document", message_id=message.id, format="sbd"),
            ack=url_for("api_inbound.ack", message_id=message.id),
        ),
    )


def outbound_message(message: Message, *, no_worker: bool = False) -> OutboundMessage:
    """`no_worker`: no background worker is alive, so a waiting message's hint says that (health.worker_missing)."""
    waiting = message.state in (MessageState.QUEUED, MessageState.RETRYING)
    return OutboundMessage(
        **message_fields(message, "api_outbound.receipt"),
        receiving_ap=(AccessPoint(seat_id=message.peer_ap_cn, endpoint_url=message.peer_endpoint_url)
                      if message.peer_endpoint_url else None),
        updated_at=message.updated_at, sent_at=message.sent_at,
        next_attempt_at=message.next_attempt_at if waiting else None, deadline_at=message.deadline_at,
        attempts=[Attempt(number=a.number, started_at=a.started_at, finished_at=a.finished_at, outcome=a.outcome,
                          error_code=a.error_code, error=a.error_reason, endpoint_url=a.endpoint_url,
                          http_status=a.http_status) for a in message.attempt_log],
        error_code=message.error_code, reason=message.error_reason,
        hint=NO_WORKER_HINT if waiting and no_worker else message.error_hint,
        links=OutboundLinks(self=url_for("api_outbound.status", message_id=message.id)),
    )


def admin_message(message: Message) -> AdminMessage:
    inbound = message.direction == Direction.INBOUND
    return AdminMessage(
        **message_fields(message, "api_inbound.receipt" if inbound else "api_outbound.receipt"),
        direction=message.direction, organisation_id=message.organisation_id,
        peer_ap=(AccessPoint(seat_id=message.peer_ap_cn, endpoint_url=message.peer_endpoint_url)
                 if message.peer_ap_cn or message.peer_endpoint_url else None),
        updated_at=message.updated_at, received_at=message.received_at, sent_at=message.sent_at,
        acked_at=message.acked_at, error_code=message.error_code, reason=message.error_reason,
        hint=message.error_hint,
    )


def filtered(query: Select[Any], params: MessageQuery) -> Select[Any]:
    """`query` narrowed by the filters of a message list. Participants compare without case, as Peppol's
    iso6523 identifiers do (phase4, for one, lower-cases them in the SBDH)."""
    for column, value in ((Message.state, params.state), (Message.document_type, params.document_type),
                          (Message.document_id, params.document_id)):
        if value is not None:
            query = query.where(column == value)
    for column, participant in ((Message.sender, params.sender), (Message.receiver, params.receiver)):
        if participant is not None:
            query = query.where(func.lower(column) == participant.lower())
    if params.since is not None:
        query = query.where(Message.created_at >= params.since)
    if params.until is not None:
        query = query.where(Message.created_at < params.until)
    return query
