"""The BIS validation outcome in the JSON APIs: the `validation` object of a message (outbound and inbound), and the
problem documents of a refused submission (422, every finding) and of missing rules (503)."""

from __future__ import annotations

from typing import Any

from accesspoint.flows.submission import RulesNotInstalled, ValidationRefused
from accesspoint.store.models import Message
from accesspoint.web.problems import ProblemError

_NULLABLE_STRING = {"type": ["string", "null"]}
FINDING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rule_id", "flag", "message", "location", "line"],
    "properties": {
        "rule_id": {"type": "string", "description": "the official rule id, e.g. BR-CO-10; UBL-XSD for a UBL 2.1 "
                                                     "schema violation"},
        "flag": {"type": "string", "enum": ["fatal", "warning"]},
        "message": {"type": "string", "description": "the rule's own message, as published"},
        "location": {"type": "string", "description": "XPath of the element the rule is about"},
        "line": {"type": ["integer", "null"], "description": "that element's line in the document, when known"},
        "layer": {"type": "string", "description": "xsd, CEN-EN16931-UBL or PEPPOL-EN16931-UBL"},
    },
}
VALIDATION_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": "The Peppol BIS validation report: `pending` until a received message is validated (after its "
                   "receipt), null for messages from before validation existed.",
    "required": ["status", "findings"],
    "properties": {
        "status": {"type": "string", "enum": ["valid", "warnings", "invalid", "not-validated", "pending"]},
        "release": {"type": "string", "description": "the OpenPeppol rule release used, e.g. 2026.5"},
        "document_type": {"type": "string"},
        "findings": {"type": "array", "items": FINDING_SCHEMA},
        "sent_despite_fatal_findings": {"type": "boolean", "description": "the organisation's validation_mode is "
                                                                          "'warn' and the document was sent anyway"},
        "warning": _NULLABLE_STRING, "detail": _NULLABLE_STRING,
    },
}


def message_validation(message: Message) -> dict[str, Any] | None:
    """The `validation` object of a message: its stored report, or `pending` while the worker has yet to validate."""
    if message.validation is None and message.validation_due_at is not None:
        return {"status": "pending", "findings": []}
    return message.validation


def refused(exc: ValidationRefused) -> ProblemError:
    """422 listing every finding (fatal and warning), so the sender can fix all of them at once."""
    return ProblemError(
        422, "Not Peppol BIS compliant", exc.detail, field=exc.field, code=exc.code, release=exc.report.release,
        findings=[f.to_dict() for f in exc.report.findings],
        errors=[{"field": exc.field, "detail": f"{f.rule_id}: {f.message}"} for f in exc.report.fatal],
    )


def rules_missing(exc: RulesNotInstalled) -> ProblemError:
    return ProblemError(503, "Validation rules not installed", f"nothing is sent unvalidated: {exc.detail}",
                        code=exc.code)
