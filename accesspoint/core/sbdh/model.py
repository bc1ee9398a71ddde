"""The SBDH as a value (`Sbdh`), its error (`SbdhError`), the envelope's constants and the xs:dateTime form."""


from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from smp.identifiers import (
    DocumentTypeId,
    ParticipantId,
    ProcessId,
)

SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
# Non-XML payloads are wrapped in BinaryContent / TextContent of this namespace
ENVELOPE_NS = "http://peppol.eu/xsd/ticc/envelope/1.0"
NON_XML_PAYLOADS = ("BinaryContent", "TextContent")
HEADER_VERSION = "1.0"

SCOPE_DOCUMENTID = "DOCUMENTID"
SCOPE_PROCESSID = "PROCESSID"
SCOPE_COUNTRY_C1 = "COUNTRY_C1"
SCOPE_MLS_TO = "MLS_TO"
SCOPE_MLS_TYPE = "MLS_TYPE"
MLS_TYPES = ("ALWAYS_SEND", "FAILURE_ONLY")
# Reserved by the envelope spec for future use; peppol-commons ignores them with a warning
RESERVED_SCOPES = frozenset({"COUNTRY_C4", "TECHNICAL_VALIDATION_URL", "TECHNICAL_VALIDATION_REQUIRED"})
KNOWN_SCOPES = frozenset({SCOPE_DOCUMENTID, SCOPE_PROCESSID, SCOPE_COUNTRY_C1, SCOPE_MLS_TO, SCOPE_MLS_TYPE})

SPIS_ICD = "0242"
COUNTRY_RE = re.compile(r"[A-Z0-9][A-Z0-9]")
SPID_RE = re.compile(r"[0-9]{6}(-[0-9A-Z_]{3,12}(\.[0-9A-Z\-._~]{3,24})?)?", re.IGNORECASE)
DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?", re.ASCII)

UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
UBL_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
UBL_ROOTS = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "Invoice",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "CreditNote",
}
UBL_VERSION = "2.1"

# XML 1.0 Char minus CR, which parsers turn into LF (the value would not read back the same)
XML_TEXT_RE = re.compile("[\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
COPY_CHUNK = 64 * 1024
MAX_PROLOG = 4096


class SbdhError(ValueError):
    """The SBD/SBDH is not acceptable; `code` is the peppol-commons error id (e.g. `missing-country-c1`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Sbdh:
    sender: ParticipantId
    receiver: ParticipantId
    document_type: DocumentTypeId
    process: ProcessId
    country_c1: str
    instance_identifier: str
    creation: datetime
    standard: str
    type_version: str
    type: str
    mls_to: ParticipantId | None = None
    mls_type: str | None = None
    additional: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()




def parse_xs_datetime(text: str) -> tuple[datetime, bool]:
    """Parse an xs:dateTime; returns (aware datetime, whether the text carried a time zone).

    A missing zone is read as UTC: the envelope spec requires a zone but peppol-commons (and so
    phase4) does not check it, and a receiver should not reject what the reference accepts.
    """
    match = DATETIME_RE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not an xs:dateTime (e.g. 2026-11-21T10:15:00Z)")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone is None or zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        if offset > timedelta(hours=14):
            raise ValueError(f"{text!r} has a time zone offset beyond 14 hours")
        tz = timezone(sign * offset)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz), zone is not None


def format_xs_datetime(value: datetime) -> str:
    """xs:dateTime with `Z` for UTC, else the numeric offset; fraction only when present."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("the creation time must carry a time zone")
    if offset % timedelta(minutes=1):
        raise ValueError("xs:dateTime offsets are whole minutes")
    text = (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    if not offset:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"
