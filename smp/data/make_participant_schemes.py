"""Derive smp/data/participant-schemes.json from the OpenPeppol eDEC code list XML.

Usage (from the repository root):
    python -m smp.data.make_participant_schemes "<path>/Peppol Code Lists - Participant identifier schemes v9.7.xml" \
        > smp/data/participant-schemes.json

Only the facts the gateway acts on are kept (code, scheme id, name, country, state, dates, registrable);
the XML itself is not vendored. The output is deterministic so a test can regenerate and compare it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from base.safexml import parse_bytes

_STATES = {"active", "deprecated", "removed"}


def build(xml: bytes) -> dict[str, Any]:
    """The JSON document for one code list version, schemes sorted by ICD."""
    root = parse_bytes(xml)
    if root.tag != "participant-identifier-schemes":
        raise ValueError(f"root element is <{root.tag}>, expected <participant-identifier-schemes>")
    schemes = []
    for item in root.iterchildren("participant-identifier-scheme"):
        icd = item.get("iso6523", "")
        state = item.get("state", "")
        if len(icd) != 4 or not icd.isdigit():
            raise ValueError(f"code list entry {item.get('schemeid')!r} has an invalid iso6523 code {icd!r}")
        if state not in _STATES:
            raise ValueError(f"code list entry {icd} has an unknown state {state!r}")
        registrable = (item.findtext("registrable") or "").strip()
        if registrable not in ("true", "false"):
            raise ValueError(f"code list entry {icd} has registrable={registrable!r}, expected true or false")
        schemes.append({
            "icd": icd,
            "scheme_id": item.get("schemeid", ""),
            "name": item.get("scheme-name", ""),
            "country": item.get("country", ""),
            "state": state,
            "deprecation_release": item.get("deprecation-release"),
            "removal_date": item.get("removal-date"),
            "registrable": registrable == "true",
        })
    schemes.sort(key=lambda s: s["icd"])
    declared = root.get("entry-count")
    if declared is not None and int(declared) != len(schemes):
        raise ValueError(f"code list declares {declared} entries but holds {len(schemes)}")
    return {"code_list": "Participant identifier schemes", "version": root.get("version", ""), "schemes": schemes}


def render(xml: bytes) -> str:
    return json.dumps(build(xml), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m smp.data.make_participant_schemes <participant identifier schemes XML>",
              file=sys.stderr)
        return 2
    sys.stdout.write(render(Path(argv[0]).read_bytes()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
