"""base.bounded: the one bounded read of remote answers (SMP client, AS4 transport, revocation fetch)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from base.bounded import TooLarge, TooSlow, connection_reason, read_bounded


def test_reads_up_to_the_limit_and_refuses_one_byte_more() -> None:
    assert read_bounded([b"ab", b"cd"], 4) == b"abcd"
    with pytest.raises(TooLarge, match="more than 3 bytes"):
        read_bounded([b"ab", b"cd"], 3)


def test_a_trickling_answer_stops_at_the_deadline() -> None:
    def trickle() -> Iterator[bytes]:
        while True:
            time.sleep(0.01)
            yield b"x"

    with pytest.raises(TooSlow):
        read_bounded(trickle(), 1 << 20, deadline=time.monotonic() + 0.05)


def test_the_innermost_cause_names_the_connection_problem() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("HTTPConnectionPool(host='x', port=1): Max retries exceeded") from inner
    except RuntimeError as outer:
        assert connection_reason(outer) == "Connection refused"
