"""Peppol identifiers: participants, document types, processes, and their form in SMP URLs.

Rules follow the Peppol Policy for use of Identifiers 4.4 as implemented by peppol-commons'
PeppolIdentifierFactory in strict mode (shared/docs/discovery.md section 1). On top of the syntax, a
strict participant parse checks the ICD against the eDEC code list (smp/data/participant-schemes.json)
and the check digits of the schemes whose check digits Peppol enforces network-wide:
0007 (PEPPOL-COMMON-R049: 10 digits, Luhn) and 0088 (PEPPOL-COMMON-R040: digits, GS1 mod 10).

Participant values under iso6523-actorid-upis compare case-insensitively, schemes case-sensitively;
document type and process identifier values compare case-sensitively. Where a door takes identifiers from anyone
(our SMP), a Peppol scheme in another case (`ISO6523-ACTORID-UPIS::0007:...`) is first given its own spelling
(`canonical_scheme`), so it names the same identifier as the lower-case one: a scheme is a name, not data, and the
answer spells it as registered (issue 13 reads the Policy for use of Identifiers as making schemes case-insensitive;
discovery.md reads peppol-commons as comparing them exactly, which stays true everywhere else).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from smp.participant_schemes import code_list, participant_scheme

PARTICIPANT_SCHEME = "iso6523-actorid-upis"
DOCTYPE_SCHEME = "busdox-docid-qns"
DOCTYPE_WILDCARD_SCHEME = "peppol-doctype-wildcard"
PROCESS_SCHEME = "cenbii-procid-ubl"

URI_SEPARATOR = "::"
MAX_SCHEME_LENGTH = 25
MAX_PARTICIPANT_VALUE_LENGTH = 4 + 1 + 130  # PFUOI 4.4: ICD, ":", up to 130 characters
MAX_DOCTYPE_VALUE_LENGTH = 500
MAX_PROCESS_VALUE_LENGTH = 200

_PARTICIPANT_SCHEME_RE = re.compile(r"[a-z0-9]+-[a-z0-9]+-[a-z0-9]+")
_PARTICIPANT_LOCAL_RE = re.compile(r"[A-Za-z0-9._~-]+")
# The whitespace characters peppol-commons forbids in schemes and busdox customization IDs
_FORBIDDEN_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0")
# java.lang.Character.isWhitespace over ISO-8859-1, which is what PFUOI POLICY 25 is checked with
_PROCESS_WHITESPACE = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ")


class IdentifierError(ValueError):
    """An identifier is invalid; `part` names the offending part ("scheme", "value", "icd", "check digit", ...)."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


def _fail(kind: str, shown: str, part: str, problem: str) -> IdentifierError:
    return IdentifierError(part, f"invalid {kind} {shown!r}: the {part} {problem}")


def _check_scheme(kind: str, shown: str, scheme: str) -> None:
    if not scheme:
        raise _fail(kind, shown, "scheme", "is empty")
    if len(scheme) > MAX_SCHEME_LENGTH:
        raise _fail(kind, shown, "scheme", f"is {len(scheme)} characters long, at most {MAX_SCHEME_LENGTH} are allowed")
    if URI_SEPARATOR in scheme:
        raise _fail(kind, shown, "scheme", "must not contain '::'")
    if any(c in _FORBIDDEN_WHITESPACE for c in scheme):
        raise _fail(kind, shown, "scheme", "must not contain whitespace")


# the Peppol schemes by their lower-case form
_CANONICAL_SCHEMES = {scheme.lower(): scheme for scheme in (PARTICIPANT_SCHEME, DOCTYPE_SCHEME, DOCTYPE_WILDCARD_SCHEME,
                                                            PROCESS_SCHEME)}


def canonical_scheme(scheme: str) -> str:
    """A Peppol identifier scheme in its own spelling, whatever the case it came in; any other scheme unchanged."""
    return _CANONICAL_SCHEMES.get(scheme.lower(), scheme)


def _split_uri(text: str, default_scheme: str) -> tuple[str, str]:
    """Split `scheme::value`, or return the default scheme for a bare value.

    Document type and process values contain `::` and `:` themselves, so a prefix only counts as a
    scheme when it is short and colon-free, as every identifier scheme is.
    """
    head, sep, tail = text.partition(URI_SEPARATOR)
    if sep and head and ":" not in head and len(head) <= MAX_SCHEME_LENGTH and not (set(head) & _FORBIDDEN_WHITESPACE):
        return head, tail.strip()
    return default_scheme, text


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) check over a digit string whose last digit is the check digit."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char)
        if position % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def gln_valid(digits: str) -> bool:
    """GS1 mod-10 check (weights 3,1,3,... from the right, check digit last).

    Any length, as PEPPOL-COMMON-R040 checks it: the Schematron-valid BIS example documents use a
    19-digit 0088 EndpointID (vectors/bis/base-example.xml), so a 13-digit rule would reject them.
    """
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


@dataclass(frozen=True, eq=False)
class ParticipantId:
    """A participant identifier; constructing one checks the PFUOI 4.4 syntax, `parse` adds the Peppol rules."""

    scheme: str
    value: str

    def __post_init__(self) -> None:
        shown = f"{self.scheme}{URI_SEPARATOR}{self.value}"
        kind = "participant identifier"
        _check_scheme(kind, shown, self.scheme)
        if not _PARTICIPANT_SCHEME_RE.fullmatch(self.scheme.lower()):
            raise _fail(kind, shown, "scheme", "must look like 'iso6523-actorid-upis' (three dash-separated words)")
        if not self.value:
            raise _fail(kind, shown, "value", "is empty")
        if len(self.value) > MAX_PARTICIPANT_VALUE_LENGTH:
            raise _fail(kind, shown, "value",
                        f"is {len(self.value)} characters long, at most {MAX_PARTICIPANT_VALUE_LENGTH} are allowed")
        if self.scheme == PARTICIPANT_SCHEME:
            icd, colon, local = self.value[:4], self.value[4:5], self.value[5:]
            if not (icd.isascii() and icd.isdigit() and len(icd) == 4) or colon != ":":
                raise _fail(kind, shown, "icd", "must be 4 digits followed by ':' (e.g. 0007:5567321707)")
            if not local:
                raise _fail(kind, shown, "value", "has nothing after the ICD")
            if not _PARTICIPANT_LOCAL_RE.fullmatch(local):
                raise _fail(kind, shown, "value", "may only contain letters, digits and - . _ ~ after the ICD")

    @classmethod
    def parse(cls, text: str, *, strict: bool = True, allow_removed: bool = False,
              on: date | None = None) -> ParticipantId:
        """Parse `scheme::value` or a bare `ICD:id` (default scheme), trimming whitespace.

        strict: also require the Peppol scheme, a known ICD that is not removed (unless allow_removed,
        for legacy data) and valid 0007/0088 check digits. Non-strict checks only the syntax, which is
        all peppol-commons checks when it reads an SBDH. `on` is the day removal is judged on (today).
        """
        # A participant value never contains "::", so any "::" separates the scheme
        head, sep, tail = text.strip().partition(URI_SEPARATOR)
        pid = cls(head.strip(), tail.strip()) if sep else cls(PARTICIPANT_SCHEME, head)
        if strict:
            pid._check_peppol_rules(allow_removed, on or datetime.now(UTC).date())
        return pid

    @classmethod
    def of(cls, icd: str, local_id: str, **kwargs: Any) -> ParticipantId:
        """`ParticipantId.of("0007", "5567321707")`; keyword arguments as for parse."""
        return cls.parse(f"{icd.strip()}:{local_id.strip()}", **kwargs)

    def _check_peppol_rules(self, allow_removed: bool, on: date) -> None:
        kind = "participant identifier"
        shown = self.uri
        if self.scheme != PARTICIPANT_SCHEME:
            raise _fail(kind, shown, "scheme", f"must be {PARTICIPANT_SCHEME!r}, the only Peppol participant scheme")
        entry = participant_scheme(self.icd)
        if entry is None:
            raise _fail(kind, shown, "icd", f"{self.icd} is not in the Peppol participant identifier scheme "
                                            f"code list v{code_list().version}")
        if entry.is_removed(on) and not allow_removed:
            when = f"on {entry.removal_date.isoformat()}" if entry.removal_date else "from the code list"
            raise _fail(kind, shown, "icd", f"{self.icd} ({entry.scheme_id}) was removed {when} and must not be "
                                            "used any more")
        local = self.local_id
        if self.icd == "0007":
            if len(local) != 10 or not local.isdigit():
                raise _fail(kind, shown, "value", "must be a Swedish organisation number of exactly 10 digits "
                                                  "after 0007:")
            if not luhn_valid(local):
                raise _fail(kind, shown, "check digit", "of the Swedish organisation number is wrong (Luhn)")
        elif self.icd == "0088":
            if not local.isdigit():
                raise _fail(kind, shown, "value", "must be a GLN made of digits only after 0088:")
            if not gln_valid(local):
                raise _fail(kind, shown, "check digit", "of the GLN is wrong (GS1 mod 10)")

    @property
    def icd(self) -> str:
        return self.value[:4]

    @property
    def local_id(self) -> str:
        return self.value[5:]

    @property
    def uri(self) -> str:
        return f"{self.scheme}{URI_SEPARATOR}{self.value}"

    @property
    def key(self) -> str:
        """The value as compared and hashed: lower-cased under the Peppol scheme (values are case-insensitive)."""
        return self.value.lower() if self.scheme == PARTICIPANT_SCHEME else self.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParticipantId):
            return NotImplemented
        return self.scheme == other.scheme and self.key == other.key

    def __hash__(self) -> int:
        return hash((self.scheme, self.key))

    def __str__(self) -> str:
        return self.uri


def _check_latin1(kind: str, shown: str, value: str) -> None:
    try:
        value.encode("iso-8859-1")
    except UnicodeEncodeError:
        raise _fail(kind, shown, "value", "may only contain ISO-8859-1 characters") from None


@dataclass(frozen=True)
class DocumentTypeId:
    """`{root namespace}::{local name}##{customization ID}::{version}` under a document type scheme."""

    scheme: str
    value: str

    def __post_init__(self) -> None:
        kind = "document type identifier"
        shown = self.uri
        _check_scheme(kind, shown, self.scheme)
        if not self.value:
            raise _fail(kind, shown, "value", "is empty")
        if len(self.value) > MAX_DOCTYPE_VALUE_LENGTH:
            raise _fail(kind, shown, "value",
                        f"is {len(self.value)} characters long, at most {MAX_DOCTYPE_VALUE_LENGTH} are allowed")
        _check_latin1(kind, shown, self.value)
        syntax_id, sep, rest = self.value.partition("##")
        if not sep:
            raise _fail(kind, shown, "value", "lacks the '##' between the root element and the customization ID")
        if not syntax_id:
            raise _fail(kind, shown, "value", "has nothing before '##' (root namespace and element)")
        customization, sep, version = rest.rpartition(URI_SEPARATOR)
        if not sep:
            raise _fail(kind, shown, "version", "is missing: the value must end with '::' and a version")
        if not customization:
            raise _fail(kind, shown, "customization id", "is empty")
        if not version:
            raise _fail(kind, shown, "version", "is empty")
        if any(c in _FORBIDDEN_WHITESPACE for c in customization):
            raise _fail(kind, shown, "customization id", "must not contain whitespace")
        if self.scheme == DOCTYPE_SCHEME and "*" in customization:
            raise _fail(kind, shown, "customization id",
                        f"must not contain '*' under {DOCTYPE_SCHEME} (use {DOCTYPE_WILDCARD_SCHEME} for wildcards)")

    @classmethod
    def parse(cls, text: str) -> DocumentTypeId:
        """Parse `scheme::value` or a bare value (scheme busdox-docid-qns), trimming outer whitespace."""
        scheme, value = _split_uri(text.strip(), DOCTYPE_SCHEME)
        return cls(scheme, value)

    @property
    def syntax_specific_id(self) -> str:
        """Everything before `##`: `{root namespace}::{local name}` for XML documents."""
        return self.value.partition("##")[0]

    @property
    def root_namespace(self) -> str:
        return self.syntax_specific_id.partition(URI_SEPARATOR)[0]

    @property
    def local_name(self) -> str | None:
        """The root element name, or None when the syntax part names no element (e.g. `urn:peppol:doctype:pdf+xml`)."""
        _, sep, local = self.syntax_specific_id.partition(URI_SEPARATOR)
        return local if sep else None

    @property
    def customization_id(self) -> str:
        return self.value.partition("##")[2].rpartition(URI_SEPARATOR)[0]

    @property
    def version(self) -> str:
        return self.value.rpartition(URI_SEPARATOR)[2]

    @property
    def uri(self) -> str:
        return f"{self.scheme}{URI_SEPARATOR}{self.value}"

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class ProcessId:
    scheme: str
    value: str

    def __post_init__(self) -> None:
        kind = "process identifier"
        shown = self.uri
        _check_scheme(kind, shown, self.scheme)
        if not self.value:
            raise _fail(kind, shown, "value", "is empty")
        if len(self.value) > MAX_PROCESS_VALUE_LENGTH:
            raise _fail(kind, shown, "value",
                        f"is {len(self.value)} characters long, at most {MAX_PROCESS_VALUE_LENGTH} are allowed")
        _check_latin1(kind, shown, self.value)
        if any(c in _PROCESS_WHITESPACE for c in self.value):
            raise _fail(kind, shown, "value", "must not contain whitespace")

    @classmethod
    def parse(cls, text: str) -> ProcessId:
        """Parse `scheme::value` or a bare value (scheme cenbii-procid-ubl), trimming outer whitespace."""
        scheme, value = _split_uri(text.strip(), PROCESS_SCHEME)
        return cls(scheme, value)

    @property
    def uri(self) -> str:
        return f"{self.scheme}{URI_SEPARATOR}{self.value}"

    def __str__(self) -> str:
        return self.uri


BIS3_CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
BIS3_INVOICE = DocumentTypeId(
    DOCTYPE_SCHEME,
    f"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##{BIS3_CUSTOMIZATION_ID}::2.1",
)
BIS3_CREDIT_NOTE = DocumentTypeId(
    DOCTYPE_SCHEME,
    f"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##{BIS3_CUSTOMIZATION_ID}::2.1",
)
BIS3_PROCESS = ProcessId(PROCESS_SCHEME, "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")

Identifier = ParticipantId | DocumentTypeId | ProcessId


def url_segment(identifier: Identifier) -> str:
    """`scheme::value` percent-encoded once as one URL path segment: everything but RFC 3986 unreserved chars."""
    return quote(identifier.uri, safe="", encoding="utf-8")


def smp_service_metadata_path(pid: ParticipantId, doctype: DocumentTypeId) -> str:
    """Path of the SignedServiceMetadata resource: `/{participant}/services/{document type}`."""
    return f"/{url_segment(pid)}/services/{url_segment(doctype)}"
