"""The BIS validation outcome in the JSON APIs: the `validation` object of a message (outbound and inbound), and the
problem documents of a refused submission (422, every finding) and of missing rules (503)."""

from __future__ import annotations

from accesspoint.flows.submission import RulesNotInstalled, ValidationRefused
from accesspoint.store.models import Message
from accesspoint.web.problems import ProblemError
from accesspoint.web.schemas.validation import Validation


def message_validation(message: Message) -> Validation | None:
    """The `validation` object of a message: its stored report, `pending` while the worker has yet to validate a
    received one, None for messages from before validation existed."""
    if message.validation is None and message.validation_due_at is not None:
        return Validation(status="pending", findings=[])
    return None if message.validation is None else Validation.model_validate(message.validation)


def refused(exc: ValidationRefused) -> ProblemError:
    """422 listing every finding (fatal and warning), so the sender can fix all of them at once."""
    return ProblemError(
        422, "Not Peppol BIS compliant", exc.detail, field=exc.field, code=exc.code, release=exc.report.release,
        findings=[f.to_dict() for f in exc.report.findings],
        errors=[{"field": exc.field, "message": f"{f.rule_id}: {f.message}"} for f in exc.report.fatal],
    )


def rules_missing(exc: RulesNotInstalled) -> ProblemError:
    return ProblemError(503, "Validation rules not installed", f"nothing is sent unvalidated: {exc.detail}",
                        code=exc.code)
