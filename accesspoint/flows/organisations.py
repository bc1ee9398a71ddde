"""Validation of organisation and participant data, shared by the admin API and the bulk import.

Pure functions: text in, clean values or `FieldError`s out, each naming the field as the caller calls it and
saying what is wrong in words an admin can act on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accesspoint.store.models import ValidationMode
from smp.identifiers import DocumentTypeId, IdentifierError, ParticipantId, ProcessId

# name -> (maximum length, required); the lengths are the store's column sizes
ORGANISATION_FIELDS: dict[str, tuple[int, bool]] = {
    "name": (300, True),
    "country": (2, True),
    "org_number": (64, False),
    "vat_number": (64, False),
    "contact_name": (200, False),
    "contact_email": (320, False),
    "contact_phone": (64, False),
    # what a fatal BIS validation finding does to a submission
    "validation_mode": (8, False),
}
VALIDATION_MODES = tuple(mode.value for mode in ValidationMode)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def clean_organisation(data: Mapping[str, Any], *, partial: bool = False,
                       prefix: str = "") -> tuple[dict[str, str | None], list[FieldError]]:
    """The organisation fields present in `data`, trimmed (empty optional fields become None).

    partial: only the given fields are checked (an update); otherwise the required ones must be there.
    Unknown keys are not looked at: the caller decides whether they are an error.
    """
    clean: dict[str, str | None] = {}
    errors: list[FieldError] = []
    for name, (limit, required) in ORGANISATION_FIELDS.items():
        where = prefix + name
        if name == "validation_mode":
            if name in data and data[name] not in VALIDATION_MODES:
                errors.append(FieldError(where, f"must be one of {', '.join(VALIDATION_MODES)}: refuse sends no "
                                                "document with a fatal BIS finding, warn sends it and says so"))
            elif name in data:
                clean[name] = data[name]
            continue
        if name not in data or data[name] is None:
            if required and not partial:
                errors.append(FieldError(where, "is required"))
            elif name in data:
                if required:
                    errors.append(FieldError(where, "must not be empty"))
                else:
                    clean[name] = None
            continue
        raw = data[name]
        if not isinstance(raw, str):
            errors.append(FieldError(where, "must be a string"))
            continue
        value = raw.strip()
        if not value:
            if required:
                errors.append(FieldError(where, "must not be empty"))
            else:
                clean[name] = None
            continue
        if name == "country":
            value = value.upper()
            if not _COUNTRY.fullmatch(value):
                errors.append(FieldError(where, f"{raw!r} is not a two-letter ISO 3166 country code (e.g. SE, NO)"))
                continue
        elif len(value) > limit:
            errors.append(FieldError(where, f"is {len(value)} characters long, at most {limit} are allowed"))
            continue
        if name == "contact_email" and not _EMAIL.fullmatch(value):
            errors.append(FieldError(where, f"{value!r} is not an email address"))
            continue
        clean[name] = value
    return clean, errors


def parse_participant(text: Any, field: str = "identifier") -> tuple[ParticipantId | None, FieldError | None]:
    """A participant identifier under the strict Peppol rules (known ICD, 0007/0088 check digits).
    `0007:5567321707` and `iso6523-actorid-upis::0007:5567321707` are both accepted."""
    if not isinstance(text, str) or not text.strip():
        return None, FieldError(field, "is required, e.g. 0007:5567321707 or iso6523-actorid-upis::0088:7300010000001")
    try:
        return ParticipantId.parse(text, strict=True), None
    except IdentifierError as exc:
        return None, FieldError(field, str(exc))


def parse_document_types(items: Any, field: str = "document_types") -> tuple[list[tuple[str, str]], list[FieldError]]:
    """[{"document_type": ..., "process": ...}, ...] -> [(document type URI, process URI)], duplicates dropped."""
    if not isinstance(items, list):
        return [], [FieldError(field, "must be a list of {document_type, process} objects")]
    found: list[tuple[str, str]] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            errors.append(FieldError(where, "must be an object with document_type and process"))
            continue
        try:
            doctype = DocumentTypeId.parse(_text(item.get("document_type")))
        except (IdentifierError, _Missing) as exc:
            errors.append(FieldError(f"{where}.document_type", str(exc)))
            continue
        try:
            process = ProcessId.parse(_text(item.get("process")))
        except (IdentifierError, _Missing) as exc:
            errors.append(FieldError(f"{where}.process", str(exc)))
            continue
        pair = (doctype.uri, process.uri)
        if pair not in found:
            found.append(pair)
    return found, errors


class _Missing(ValueError):
    pass


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Missing("is required (scheme::value)")
    return value
