"""A generated customer register for the import tests and bench/bench_import.py.

Row i (0-based) is organisation "Company i AB" with participant 0007:<its organisation number> (10 digits, Luhn),
except that some rows are made wrong on purpose, in a fixed pattern:

- every 50th row has a wrong check digit (invalid)
- every 40th row repeats the previous row's participant (invalid: already on an earlier line)
- every 100th row is a participant another provider's SMP holds in the SML (registered elsewhere)
- every 7th remaining row has receive=no (created, receiving off)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from smp.identifiers import ParticipantId, luhn_valid

HEADER = "org_number,name,country,vat_number,contact_email,participant,receive\n"


def org_number(i: int) -> str:
    """The i-th Luhn-valid 10-digit number starting with 55 (Swedish limited companies)."""
    base = f"55{i:07d}"
    return next(base + digit for digit in "0123456789" if luhn_valid(base + digit))


@dataclass(frozen=True)
class Register:
    lines: list[str]
    elsewhere: list[ParticipantId]
    expected: Counter[str]


def generate(rows: int) -> Register:
    lines = [HEADER]
    elsewhere: list[ParticipantId] = []
    expected: Counter[str] = Counter()
    previous = ""
    for i in range(rows):
        number = org_number(i)
        participant = f"0007:{number}"
        receive = "yes"
        if i % 50 == 49:
            participant = f"0007:{number[:-1]}{(int(number[-1]) + 1) % 10}"
            expected["invalid"] += 1
        elif i % 40 == 39:
            participant = previous
            expected["invalid"] += 1
        elif i % 100 == 98:
            elsewhere.append(ParticipantId.parse(participant))
            expected["registered-elsewhere"] += 1
        elif i % 7 == 3:
            receive = "no"
            expected["created"] += 1
        else:
            expected["registered"] += 1
        lines.append(f"{number},Company {i} AB,SE,SE{number}01,billing{i}@example.com,{participant},{receive}\n")
        previous = participant
    return Register(lines, elsewhere, expected)
