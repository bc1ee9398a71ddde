"""The Peppol participant identifier scheme code list (ICDs), as data.

Loaded from smp/data/participant-schemes.json, which make_participant_schemes.py derives from the eDEC
code list XML. A scheme counts as removed once the code list says so OR once its announced removal date
has passed (v9.7 lists 0193 UBLBE as "deprecated" with removal date 2026-07-07): the state column is
only refreshed with each code list release, the date is the binding part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Literal

State = Literal["active", "deprecated", "removed"]


@dataclass(frozen=True)
class ParticipantScheme:
    icd: str
    scheme_id: str
    name: str
    country: str
    state: State
    deprecation_release: str | None
    removal_date: date | None
    registrable: bool

    def is_removed(self, on: date) -> bool:
        """True if the scheme must no longer be used on the given day."""
        return self.state == "removed" or (self.removal_date is not None and self.removal_date <= on)


@dataclass(frozen=True)
class CodeList:
    version: str
    schemes: MappingProxyType[str, ParticipantScheme]


@cache
def code_list() -> CodeList:
    raw = json.loads(resources.files("smp").joinpath("data/participant-schemes.json").read_text("utf-8"))
    schemes = {
        entry["icd"]: ParticipantScheme(
            icd=entry["icd"],
            scheme_id=entry["scheme_id"],
            name=entry["name"],
            country=entry["country"],
            state=entry["state"],
            deprecation_release=entry["deprecation_release"],
            removal_date=date.fromisoformat(entry["removal_date"]) if entry["removal_date"] else None,
            registrable=entry["registrable"],
        )
        for entry in raw["schemes"]
    }
    return CodeList(version=raw["version"], schemes=MappingProxyType(schemes))


def participant_scheme(icd: str) -> ParticipantScheme | None:
    """The code list entry for a 4-digit ICD, or None if the code list does not know it."""
    return code_list().schemes.get(icd)
