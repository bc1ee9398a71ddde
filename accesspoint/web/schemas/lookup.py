"""`GET /api/v1/lookup/{participant}`: can the participant receive a document type over Peppol, and where."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from accesspoint.web.schemas.common import Query, Schema, model_examples
from accesspoint.web.schemas.messages import BILLING, INVOICE, RECEIVER


class LookupQuery(Query):
    doctype: str | None = Field(None, max_length=1000, description="document type identifier; default Peppol BIS "
                                "Billing 3.0 invoice", examples=[INVOICE])
    process: str | None = Field(None, max_length=1000, description="process identifier; default Peppol BIS Billing "
                                "3.0", examples=[BILLING])


class ReceivingAccessPoint(Schema):
    seat_id: str | None = Field(description="the seat ID (CN) of the access point's certificate")
    endpoint_url: str
    transport_profile: str
    certificate_subject: str
    certificate_not_after: datetime
    smp: str = Field(description="the SMP that published the endpoint")


class LookupResult(Schema):
    """Whether the participant can receive the document, through which access point, or why not"""

    model_config = model_examples(
        {"participant": RECEIVER, "document_type": INVOICE, "process": BILLING, "can_receive": True, "reason": None,
         "detail": None, "hint": None, "kind": None,
         "access_point": {"seat_id": "POP000002", "endpoint_url": "https://ap.example/as4",
                          "transport_profile": "peppol-transport-as4-v2_0",
                          "certificate_subject": "CN=POP000002,OU=PEPPOL TEST AP,O=Example AP,C=SE",
                          "certificate_not_after": "2027-11-21T09:00:00Z", "smp": "http://smp.example"}},
        {"participant": RECEIVER, "document_type": INVOICE, "process": BILLING, "can_receive": False,
         "reason": "0088:7300010000001 is not registered in Peppol", "detail": "no NAPTR record",
         "hint": "ask the receiver which access point they use", "kind": "not-registered", "access_point": None},
    )

    participant: str
    document_type: str
    process: str
    can_receive: bool
    reason: str | None = Field(None, description="why not, when it cannot")
    detail: str | None = None
    hint: str | None = None
    kind: str | None = None
    access_point: ReceivingAccessPoint | None = None
