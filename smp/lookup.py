"""SML lookup: participant -> SMP base URI through a U-NAPTR record (Peppol SML 1.3.0 / PFUOI 4.4.0).

The name is `lower(base32_nopad(sha256(lower(value)))) . lower(scheme) . zone`; the NAPTR records
with flags `U` and service `Meta:SMP` carry the SMP URI in their regexp. The CNAME scheme
(`B-<md5>`) ended in February 2026 and is deliberately not implemented, not even as a fallback:
a CNAME answer today would come from a stale zone.

Pure functions (`naptr_name`, `parse_naptr_regexp`, `select_smp_uri`) are separated from the DNS
I/O in `SmlLookup`, which is the only place that knows dnspython.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from smp.errors import DiscoveryUnavailable, DiscoveryUntrusted, ParticipantNotRegistered

SML_ZONES: dict[str, str] = {
    "production": "participant.sml.prod.tech.peppol.org",
    "test": "participant.sml.test.tech.peppol.org",
    "local": "local.peppol.test",
}
SMP_SERVICE = "Meta:SMP"


class Participant(Protocol):
    """What the lookup needs of a participant identifier (smp.identifiers.ParticipantId fits)."""

    @property
    def scheme(self) -> str: ...

    @property
    def value(self) -> str: ...


@dataclass(frozen=True)
class NaptrRecord:
    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str = "."

    def __str__(self) -> str:
        return f'{self.order} {self.preference} "{self.flags}" "{self.service}" "{self.regexp}" {self.replacement}'


@dataclass(frozen=True)
class SmlAnswer:
    dns_name: str
    records: tuple[NaptrRecord, ...]
    smp_uri: str
    ttl: int | None = None


def naptr_name(participant: Participant, zone: str) -> str:
    """The DNS name the SML publishes for a participant in `zone`.

    Only the value is hashed (lower-cased first: participant values are case-insensitive); the
    scheme becomes a label of its own.
    """
    value = participant.value.strip().lower()
    digest = hashlib.sha256(value.encode("utf-8")).digest()
    label = base64.b32encode(digest).decode("ascii").rstrip("=").lower()
    return f"{label}.{participant.scheme.strip().lower()}.{zone.strip().strip('.').lower()}"


def _split_unescaped(text: str, delimiter: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            # An escaped delimiter stands for the delimiter itself; other escapes stay for the regex.
            current.append(char if char == delimiter else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == delimiter:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def parse_naptr_regexp(regexp: str, name: str) -> str:
    """Apply a NAPTR substitution expression (RFC 3402 section 3.2) to `name`.

    The first character is the delimiter; the expression is `<d>ERE<d>replacement<d>flags` with
    flag `i` for case-insensitive matching. Back-references `\\1`..`\\9` are supported. Raises
    ValueError when the expression is malformed or does not match.
    """
    if len(regexp) < 3:
        raise ValueError(f"NAPTR regexp {regexp!r} is too short")
    delimiter = regexp[0]
    if delimiter.isalnum() or delimiter == "\\":
        raise ValueError(f"NAPTR regexp {regexp!r}: {delimiter!r} cannot be a delimiter")
    parts = _split_unescaped(regexp[1:], delimiter)
    if len(parts) != 3:
        raise ValueError(f"NAPTR regexp {regexp!r}: expected <d>pattern<d>replacement<d>flags")
    pattern, replacement, flags = parts
    if flags not in ("", "i"):
        raise ValueError(f"NAPTR regexp {regexp!r}: unknown flags {flags!r}")
    try:
        compiled = re.compile(pattern, re.IGNORECASE if flags == "i" else 0)
    except re.error as exc:
        raise ValueError(f"NAPTR regexp {regexp!r}: invalid pattern: {exc}") from None
    match = compiled.search(name)
    if match is None:
        raise ValueError(f"NAPTR regexp {regexp!r} does not match {name}")
    # RFC 3402: the result is the replacement with back-references filled in (not a sed-style
    # in-place substitution of the matched part).
    try:
        return re.sub(r"\\([0-9])", lambda m: match.group(int(m.group(1))) or "", replacement)
    except IndexError:
        raise ValueError(f"NAPTR regexp {regexp!r}: back-reference to a missing group") from None


def select_smp_uri(records: Sequence[NaptrRecord], name: str) -> str:
    """The SMP base URI from the `U` / `Meta:SMP` records for `name` (lowest order, then preference).

    Raises LookupError when no record has flags U and service Meta:SMP, ValueError when the matching
    records are unusable (regexp broken, result not an http(s) URL).
    """
    candidates = sorted(
        (r for r in records if r.flags.strip().upper() == "U" and r.service.strip().lower() == SMP_SERVICE.lower()),
        key=lambda r: (r.order, r.preference),
    )
    if not candidates:
        raise LookupError("no NAPTR record with flags U and service Meta:SMP")
    problems: list[str] = []
    for record in candidates:
        try:
            uri = parse_naptr_regexp(record.regexp, name)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"NAPTR record {record} gives {uri!r}, which is not an http(s) URL")
            continue
        return uri.rstrip("/")
    raise ValueError("; ".join(problems))


def _nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """`ip`, `ip:port`, `[v6]:port` -> a UDP/TCP nameserver."""
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    return dns.nameserver.Do53Nameserver(host, port)


class SmlLookup:
    """NAPTR lookup against one SML zone, through the system resolver or the given DNS servers.

    No DNS cache of its own (like peppol-commons); the discovery cache sits above it.
    """

    def __init__(self, zone: str, nameservers: list[str] | None = None, timeout: float = 5.0) -> None:
        self.zone = zone
        self.timeout = timeout
        if nameservers:
            try:
                servers = [_nameserver(s) for s in nameservers]
            except ValueError as exc:
                raise ValueError(f"DNS server list {nameservers!r}: {exc} (use ip or ip:port)") from None
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = servers
        else:
            self._resolver = dns.resolver.Resolver()
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(timeout, 2.0)

    def lookup(self, participant: Participant) -> SmlAnswer:
        name = naptr_name(participant, self.zone)
        shown = f"{participant.scheme}::{participant.value}"
        try:
            answer = self._resolver.resolve(name, dns.rdatatype.NAPTR, raise_on_no_answer=True, search=False)
        except dns.resolver.NXDOMAIN:
            raise ParticipantNotRegistered(
                f"{shown} is not registered in Peppol (NXDOMAIN for {name})"
            ) from None
        except dns.resolver.NoAnswer:
            raise ParticipantNotRegistered(
                f"{shown} is not registered in Peppol ({name} exists but has no NAPTR record)"
            ) from None
        except dns.resolver.NoNameservers as exc:
            raise DiscoveryUnavailable(
                f"SML lookup of {shown} failed: DNS servers answered with an error for {name} ({exc})"
            ) from None
        except dns.exception.Timeout:
            raise DiscoveryUnavailable(
                f"SML lookup of {shown} timed out after {self.timeout:g}s asking for {name}"
            ) from None
        except dns.exception.DNSException as exc:
            raise DiscoveryUnavailable(f"SML lookup of {shown} failed for {name}: {exc}") from None
        records = tuple(
            NaptrRecord(
                order=r.order,
                preference=r.preference,
                flags=r.flags.decode("ascii", "replace"),
                service=r.service.decode("ascii", "replace"),
                regexp=r.regexp.decode("utf-8", "replace"),
                replacement=r.replacement.to_text(),
            )
            for r in answer
        )
        try:
            uri = select_smp_uri(records, name)
        except LookupError:
            raise ParticipantNotRegistered(
                f"{shown} is not registered in Peppol: {name} has NAPTR records but none with "
                f"flags U and service Meta:SMP"
            ) from None
        except ValueError as exc:
            raise DiscoveryUntrusted(f"SML record for {shown} ({name}) is unusable: {exc}") from None
        return SmlAnswer(dns_name=name, records=records, smp_uri=uri, ttl=answer.rrset.ttl if answer.rrset else None)
