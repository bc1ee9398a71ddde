"""The validation report: what the official rules found in one document, as plain values (stored as JSON with the
message, shown by the APIs, the CLI and webhook events)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

FATAL = "fatal"
WARNING = "warning"
Flag = Literal["fatal", "warning"]

# The rule id given to a UBL 2.1 schema violation: the XSD layer has no rule ids of its own, and a finding needs
# one so that the doors can list every finding the same way.
XSD_RULE = "UBL-XSD"


class Status(StrEnum):
    VALID = "valid"          # no finding at all
    WARNINGS = "warnings"    # warnings only: compliant, may be sent and must be accepted
    INVALID = "invalid"      # at least one fatal finding: not compliant


@dataclass(frozen=True)
class Finding:
    """One failed assertion (or successful report) of a rule, or one XSD error.

    `layer` is "xsd" or the schematron's file stem (e.g. "CEN-EN16931-UBL"), `location` the XPath the rule
    reported (for XSD errors, the element path lxml gave), `line` the element's line in the document when known.
    """

    rule_id: str
    flag: Flag
    message: str
    location: str
    line: int | None
    layer: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "flag": self.flag, "message": self.message, "location": self.location,
                "line": self.line, "layer": self.layer}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(rule_id=data["rule_id"], flag=data["flag"], message=data["message"], location=data["location"],
                   line=data.get("line"), layer=data["layer"])


@dataclass(frozen=True)
class Report:
    """Every finding of every layer run on one document, with the rule release and the document type used."""

    release: str
    document_type: str
    findings: tuple[Finding, ...]

    @property
    def fatal(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag == FATAL)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag == WARNING)

    @property
    def status(self) -> Status:
        if self.fatal:
            return Status.INVALID
        return Status.WARNINGS if self.findings else Status.VALID

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "release": self.release, "document_type": self.document_type,
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return cls(release=data["release"], document_type=data["document_type"],
                   findings=tuple(Finding.from_dict(f) for f in data["findings"]))
