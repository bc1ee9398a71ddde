"""Messages, inbound and outbound, as the network API and the admin API show and filter them.

One name per concept in both directions: the fields of `MessageFields` mean the same in an inbound and an outbound
message (`sbdh_instance_id`, `document_id`, `receipt`, ...); each direction adds what only it has.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from accesspoint.store.models import INBOUND_STATES, OUTBOUND_STATES, MessageState
from accesspoint.web.schemas.common import Instant, ListQuery, Page, Query, Schema, model_examples, page_examples
from accesspoint.web.schemas.validation import Validation
from smp.identifiers import DocumentTypeId, IdentifierError, ParticipantId

Order = Literal["newest", "oldest"]
InboundState = Literal[INBOUND_STATES]  # type: ignore[valid-type]
OutboundState = Literal[OUTBOUND_STATES]  # type: ignore[valid-type]

SENDER = "iso6523-actorid-upis::0007:5567321707"
RECEIVER = "iso6523-actorid-upis::0088:7300010000001"
INVOICE = ("busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
           "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1")
BILLING = "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
MESSAGE_ID = "0f6a1c1e-8b0d-4f0e-a3c4-0d3c9f0b1e22"


class MessageQuery(ListQuery):
    """The filters of a message list (the organisation's own in the network API, any in the admin API)."""

    state: MessageState | None = Field(None, description="only messages in this state")

    sender: str | None = Field(None, max_length=300, description="the sending participant, `scheme::value` or "
                               "`ICD:id`", examples=["0007:5567321707"])
    receiver: str | None = Field(None, max_length=300, description="the receiving participant, `scheme::value` or "
                                 "`ICD:id`", examples=[RECEIVER])
    document_type: str | None = Field(None, max_length=600, description="the document type, `scheme::value`",
                                      examples=[INVOICE])
    document_id: str | None = Field(None, max_length=200, description="the business document's own ID (the "
                                    "invoice or credit note number, `cbc:ID`)", examples=["INV-2026-0042"])
    since: Instant | None = Field(None, description="only messages created at or after this instant")
    until: Instant | None = Field(None, description="only messages created before this instant")

    @field_validator("sender", "receiver")
    @classmethod
    def _participant(cls, text: str | None) -> str | None:
        if text is None:
            return None
        try:
            return ParticipantId.parse(text, strict=False).uri
        except IdentifierError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("document_type")
    @classmethod
    def _document_type(cls, text: str | None) -> str | None:
        if text is None:
            return None
        try:
            return DocumentTypeId.parse(text).uri
        except IdentifierError as exc:
            raise ValueError(str(exc)) from None


class InboundQuery(MessageQuery):
    state: InboundState | None = Field(None, description="`new` to poll for what is not acknowledged yet")
    order: Order = Field("oldest", description="`oldest` (arrival order, the order to process and ack in) or "
                         "`newest`")


class OutboundQuery(MessageQuery):
    state: OutboundState | None = None
    order: Order = Field("newest", description="`newest` or `oldest` first")


class DocumentQuery(Query):
    format: Literal["document", "sbd"] = Field("document", description="`document`: the business document alone "
                                              "(the UBL invoice); `sbd`: the Standard Business Document as received")


class SubmitQuery(Query):
    receiver: str | None = Field(None, max_length=300, description="send a UBL document to this participant "
                                 "instead of its AccountingCustomerParty", examples=["0007:5567321707"])


class ReceiptRef(Schema):
    """The AS4 receipt of the message: ours for an inbound message, the receiving AP's for an outbound one"""

    as4_message_id: str
    sha256: str
    url: str = Field(description="the signed receipt, byte for byte")


class AccessPoint(Schema):
    """The other access point: the seat ID (CN) of its certificate, and for outbound the endpoint we sent to"""

    seat_id: str | None
    endpoint_url: str | None = None


class MessageFields(Schema):
    id: str
    state: MessageState
    sender: str | None = Field(description="participant `scheme::value`")
    receiver: str | None = Field(description="participant `scheme::value`")
    document_type: str | None = Field(description="document type `scheme::value`")
    process: str | None = Field(description="process `scheme::value`")
    country_c1: str | None = Field(description="the country of the sender (C1) as the SBDH gives it")
    document_id: str | None = Field(description="the business document's own ID (the invoice number)")
    sbdh_instance_id: str | None = Field(description="the SBDH InstanceIdentifier")
    as4_message_id: str | None
    conversation_id: str | None
    sbd_size: int | None = Field(description="bytes of the SBD")
    sbd_sha256: str | None
    document_size: int | None = Field(description="bytes of the business document inside the SBD")
    created_at: datetime
    receipt: ReceiptRef | None
    validation: Validation | None = Field(description="the Peppol BIS validation report (null for messages from "
                                                      "before validation existed)")


class InboundLinks(Schema):
    self: str
    document: str
    sbd: str
    ack: str


class InboundMessage(MessageFields):
    """An inbound message: received from another access point for a participant of the organisation"""

    model_config = model_examples({
        "id": MESSAGE_ID, "state": "new", "sender": SENDER, "receiver": RECEIVER, "document_type": INVOICE,
        "process": BILLING, "country_c1": "SE", "document_id": "INV-2026-0042", "sbdh_instance_id":
        "4f5c2b8e-1b7e-4a8e-9d3e-6c1f0a2b3c4d", "as4_message_id": "a1b2c3@peer.example", "conversation_id": "conv-1",
        "sbd_size": 7816, "sbd_sha256": "9f" * 32, "document_size": 6950, "created_at": "2026-11-21T09:00:00Z",
        "validation": {"status": "valid", "release": "2026.5", "document_type": "invoice", "findings": [],
                       "sent_despite_fatal_findings": None, "warning": None, "detail": None},
        "receipt": {"as4_message_id": "d4e5f6@ap.example", "sha256": "3c" * 32,
                    "url": f"/api/v1/inbound/{MESSAGE_ID}/receipt"},
        "sending_ap": {"seat_id": "POP000002", "endpoint_url": None}, "duplicate_of": None,
        "received_at": "2026-11-21T09:00:00Z", "acked_at": None,
        "links": {"self": f"/api/v1/inbound/{MESSAGE_ID}", "document": f"/api/v1/inbound/{MESSAGE_ID}/document",
                  "sbd": f"/api/v1/inbound/{MESSAGE_ID}/document?format=sbd",
                  "ack": f"/api/v1/inbound/{MESSAGE_ID}/ack"},
    })

    sending_ap: AccessPoint | None
    duplicate_of: str | None = Field(description="an earlier message with the same SBDH InstanceIdentifier")
    received_at: datetime
    acked_at: datetime | None
    links: InboundLinks


class InboundPage(Page):
    model_config = page_examples(InboundMessage, "/api/v1/inbound")

    items: list[InboundMessage]


class Attempt(Schema):
    number: int
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    error_code: str | None
    error: str | None
    endpoint_url: str | None
    http_status: int | None


class OutboundLinks(Schema):
    self: str


class OutboundMessage(MessageFields):
    """An outbound message: its state, the tries so far, and on failure a reason and what to do"""

    model_config = model_examples({
        "id": MESSAGE_ID, "state": "sent", "sender": SENDER, "receiver": RECEIVER, "document_type": INVOICE,
        "process": BILLING, "country_c1": "SE", "document_id": "INV-2026-0042", "sbdh_instance_id":
        "4f5c2b8e-1b7e-4a8e-9d3e-6c1f0a2b3c4d", "as4_message_id": "a1b2c3@ap.example", "conversation_id": "conv-1",
        "sbd_size": 7816, "sbd_sha256": "9f" * 32, "document_size": 6950, "created_at": "2026-11-21T09:00:00Z",
        "validation": {"status": "warnings", "release": "2026.5", "document_type": "invoice", "findings": [
            {"rule_id": "UBL-CR-679", "flag": "warning", "message": "[UBL-CR-679]-A UBL invoice should not include "
             "the ClassifiedTaxCategory/ID schemeID", "location": "/*:Invoice[namespace-uri()='urn:oasis:names:"
             "specification:ubl:schema:xsd:Invoice-2'][1]", "line": 4, "layer": "CEN-EN16931-UBL"}],
            "sent_despite_fatal_findings": None, "warning": None, "detail": None},
        "receipt": {"as4_message_id": "d4e5f6@peer.example", "sha256": "3c" * 32,
                    "url": f"/api/v1/outbound/{MESSAGE_ID}/receipt"},
        "receiving_ap": {"seat_id": "POP000002", "endpoint_url": "https://ap.example/as4"},
        "updated_at": "2026-11-21T09:00:02Z", "sent_at": "2026-11-21T09:00:02Z", "next_attempt_at": None,
        "deadline_at": "2026-11-22T09:00:00Z",
        "attempts": [{"number": 1, "started_at": "2026-11-21T09:00:01Z", "finished_at": "2026-11-21T09:00:02Z",
                      "outcome": "sent", "error_code": None, "error": None,
                      "endpoint_url": "https://ap.example/as4", "http_status": 200}],
        "error_code": None, "reason": None, "hint": None, "links": {"self": f"/api/v1/outbound/{MESSAGE_ID}"},
    })

    receiving_ap: AccessPoint | None
    updated_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="when the next try is due (queued or retrying only)")
    deadline_at: datetime | None
    attempts: list[Attempt]
    error_code: str | None
    reason: str | None = Field(description="why the message failed, in words a person can act on")
    hint: str | None = Field(description="what to do about it")
    links: OutboundLinks


class OutboundPage(Page):
    model_config = page_examples(OutboundMessage, "/api/v1/outbound")

    items: list[OutboundMessage]


class AdminMessageQuery(MessageQuery):
    organisation: int | None = Field(None, ge=1, le=2**31 - 1, description="only this organisation's messages (id)")
    direction: Literal["inbound", "outbound"] | None = None
    order: Order = Field("newest", description="`newest` or `oldest` first")


class AdminMessage(MessageFields):
    """A message of any organisation, as support sees it (the receipt URL is the network API's)"""

    model_config = model_examples({
        "id": MESSAGE_ID, "direction": "outbound", "organisation_id": 1, "state": "failed", "sender": SENDER,
        "receiver": RECEIVER, "document_type": INVOICE, "process": BILLING, "country_c1": "SE",
        "document_id": "INV-2026-0042", "sbdh_instance_id": "4f5c2b8e-1b7e-4a8e-9d3e-6c1f0a2b3c4d",
        "as4_message_id": None, "conversation_id": "conv-1", "sbd_size": 7816, "sbd_sha256": "9f" * 32,
        "document_size": 6950, "created_at": "2026-11-21T09:00:00Z", "receipt": None, "validation": None,
        "peer_ap": None, "updated_at": "2026-11-22T09:00:00Z", "received_at": None, "sent_at": None,
        "acked_at": None, "error_code": "participant-not-registered",
        "reason": "0088:7300010000001 is not registered in Peppol",
        "hint": "Check the participant identifier with the receiver; they must be registered in the Peppol SML.",
    })

    direction: Literal["inbound", "outbound"]
    organisation_id: int | None
    peer_ap: AccessPoint | None = Field(description="the other access point: the sender's for inbound, the "
                                        "receiver's for outbound")
    updated_at: datetime
    received_at: datetime | None
    sent_at: datetime | None
    acked_at: datetime | None
    error_code: str | None
    reason: str | None
    hint: str | None


class AdminMessagePage(Page):
    model_config = page_examples(AdminMessage, "/admin/api/messages")

    items: list[AdminMessage]
