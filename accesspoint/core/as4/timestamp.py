"""The wsu:Timestamp of a wsse:Security header, judged at a given time (no clock here: `now` is passed in).

Policy, with phase4 as the reference. phase4 neither sends nor requires a wsu:Timestamp (as4.md section 3), but it
hands the security header to WSS4J, whose defaults phase4 keeps: a Timestamp that is present is enforced. WSS4J
refuses one whose Expires has passed, whose Created lies more than 60 s in the future, whose Created is older than
300 s, and one that breaks the Basic Security Profile (more than one Timestamp, no Created, several Expires); phase4
answers every WSS4J failure with EBMS:0102. We enforce the same, with these differences:

- one tolerance for clock skew between the two access points, `as4.timestamp_clock_skew_seconds` (default 60 s,
  WSS4J's future TTL), applied both ways: Expires must be later than now - skew, Created earlier than now + skew;
- no age limit on Created: the sender's Expires says how long its message is good for, and replays are caught by
  the persistent MessageId duplicate check, not by a five-minute window that would also refuse a sender's resend
  of the same bytes after a lost answer (as4.md pitfall 16);
- the answer is EBMS:0101 FailedAuthentication, not 0102: phase4 says FailedDecryption only because it cannot tell
  WSS4J's failures apart, and this code base answers the other failures of the security header with the code that
  names the cause (a bad signature is EBMS:0101 here too).

A message without a wsu:Timestamp (every phase4 message) is not affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from accesspoint.core.as4 import ns
from accesspoint.core.as4.errors import FAILED_AUTHENTICATION, As4Error
from accesspoint.core.as4.messaging import format_timestamp, parse_timestamp


@dataclass(frozen=True)
class SecurityTimestamp:
    created: datetime
    expires: datetime | None


def _refuse(problem: str) -> As4Error:
    return As4Error(FAILED_AUTHENTICATION, f"the wsu:Timestamp of the security header {problem}")


def _instant(element: etree._Element, name: str) -> datetime:
    try:
        return parse_timestamp(element.text or "")
    except ValueError as exc:
        raise _refuse(f"has an unreadable wsu:{name}: {exc}") from None


def read_timestamp(security: etree._Element) -> SecurityTimestamp | None:
    """The wsu:Timestamp among the children of a wsse:Security header, None when there is none.

    Raises As4Error EBMS:0101 for one the Basic Security Profile forbids: several Timestamps, a Timestamp without
    exactly one wsu:Created, with more than one wsu:Expires, or with an Expires not after its Created.
    """
    found = security.findall(f"{{{ns.WSU}}}Timestamp")
    if not found:
        return None
    if len(found) > 1:
        raise _refuse(f"occurs {len(found)} times; a security header has at most one")
    created, expires = found[0].findall(f"{{{ns.WSU}}}Created"), found[0].findall(f"{{{ns.WSU}}}Expires")
    if len(created) != 1 or len(expires) > 1:
        raise _refuse(f"has {len(created)} wsu:Created and {len(expires)} wsu:Expires; it must have one Created and "
                      "at most one Expires")
    stamp = SecurityTimestamp(_instant(created[0], "Created"), _instant(expires[0], "Expires") if expires else None)
    if stamp.expires is not None and stamp.expires <= stamp.created:
        raise _refuse(f"expires ({format_timestamp(stamp.expires)}) before it was created "
                      f"({format_timestamp(stamp.created)})")
    return stamp


def check_timestamp(stamp: SecurityTimestamp, now: datetime, skew: timedelta) -> None:
    """Refuse (As4Error EBMS:0101) a Timestamp that expired more than `skew` ago or is created more than `skew` from
    now into the future."""
    if stamp.expires is not None and stamp.expires <= now - skew:
        raise _refuse(f"expired at {format_timestamp(stamp.expires)}; it is {format_timestamp(now)} here "
                      f"(clock skew tolerated: {skew.total_seconds():g} s)")
    if stamp.created > now + skew:
        raise _refuse(f"was created at {format_timestamp(stamp.created)}, in the future; it is "
                      f"{format_timestamp(now)} here (clock skew tolerated: {skew.total_seconds():g} s)")
