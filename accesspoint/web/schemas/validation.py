"""The BIS validation outcome as the APIs show it: the `validation` object of a message (both directions) and the
findings of a refused submission."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from accesspoint.web.schemas.common import Schema, model_examples

FINDING_EXAMPLE = {"rule_id": "UBL-CR-679", "flag": "warning", "message": "[UBL-CR-679]-A UBL invoice should not "
                   "include the ClassifiedTaxCategory/ID schemeID", "location": "/*:Invoice[namespace-uri()="
                   "'urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'][1]", "line": 4,
                   "layer": "CEN-EN16931-UBL"}


class Finding(Schema):
    """One finding of the official rules"""

    model_config = model_examples(FINDING_EXAMPLE)

    rule_id: str = Field(description="the official rule id, e.g. BR-CO-10; UBL-XSD for a UBL 2.1 schema violation")
    flag: Literal["fatal", "warning"]
    message: str = Field(description="the rule's own message, as published")
    location: str = Field(description="XPath of the element the rule is about")
    line: int | None = Field(description="that element's line in the document, when known")
    layer: str = Field(description="xsd, CEN-EN16931-UBL or PEPPOL-EN16931-UBL")


class Validation(Schema):
    """The Peppol BIS validation report: `pending` until a received message is validated (after its receipt)"""

    model_config = model_examples({"status": "warnings", "release": "2026.5", "document_type": "invoice",
                                   "findings": [FINDING_EXAMPLE],
                                   "sent_despite_fatal_findings": None, "warning": None, "detail": None})

    status: Literal["valid", "warnings", "invalid", "not-validated", "pending"]
    release: str | None = Field(None, description="the OpenPeppol rule release used, e.g. 2026.5")
    document_type: str | None = None
    findings: list[Finding]
    sent_despite_fatal_findings: bool | None = Field(None, description="the organisation's validation_mode is "
                                                                        "'warn' and the document was sent anyway")
    warning: str | None = None
    detail: str | None = None
