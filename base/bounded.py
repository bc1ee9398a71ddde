"""Bounded reads of what a remote server sends: the SMP client, the AS4 transport and the revocation fetcher read
HTTP answers through here, so a peer cannot make us buffer more than a limit or trickle an answer forever.

No HTTP client is imported: the callers pass the chunks (`response.iter_content(...)`) and map the two exceptions to
their own error types.
"""

from __future__ import annotations

import time
from collections.abc import Iterable


class TooLarge(Exception):
    """The answer went past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class TooSlow(Exception):
    """The answer was still arriving at the deadline."""


def read_bounded(chunks: Iterable[bytes], limit: int, *, deadline: float | None = None) -> bytes:
    """Join `chunks`, refusing more than `limit` bytes, and, with a `deadline` (time.monotonic()), a body that is
    still arriving when it has passed."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        if deadline is not None and time.monotonic() > deadline:
            raise TooSlow
        parts.append(chunk)
    return b"".join(parts)


def connection_reason(exc: BaseException) -> str:
    """The innermost cause of an HTTP client's connection error, e.g. 'Connection refused', without the wrapping
    layers' prose."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    text = str(exc)
    return text.split("] ", 1)[-1] if "] " in text else text
