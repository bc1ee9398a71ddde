"""A wsu:Timestamp in the sender's security header (phase4 sends none; other stacks do) is enforced as phase4's WSS4J
enforces it (policy in accesspoint/core/as4/timestamp.py): expired, or created in the future, beyond the tolerated
clock skew (`as4.timestamp_clock_skew_seconds`, 60 s by default) is EBMS:0101, nothing stored, and the gateway goes
on accepting valid messages; inside the tolerance it is accepted. The messages are built by our sending code, with
a wsu:Timestamp added to the security header before it is signed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from accesspoint.core.as4 import messaging, ns
from accesspoint.core.as4.messaging import UserMessage, format_timestamp
from tests.hostile.as4_support import inspected_code, receipted, refused_with, still_accepts_valid_traffic
from tests.receiving.conftest import Receiver, ReceiverFactory

MINUTE = timedelta(minutes=1)

# (wsu:Created, wsu:Expires) relative to now; None leaves the element out, a str is written as it is
Stamp = tuple[timedelta | str | None, timedelta | str | None]


@pytest.fixture
def with_timestamp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """`with_timestamp(stamp, ...)`: the messages built from now on carry these wsu:Timestamps."""
    build = messaging.build_user_message

    def use(*stamps: Stamp) -> None:
        def built(um: UserMessage) -> etree._Element:
            envelope = build(um)
            security, now = messaging.security_header(envelope), datetime.now(UTC)
            for number, (created, expires) in enumerate(stamps, 1):
                stamp = etree.SubElement(security, f"{{{ns.WSU}}}Timestamp", {f"{{{ns.WSU}}}Id": f"TS-{number}"})
                for name, value in (("Created", created), ("Expires", expires)):
                    if value is not None:
                        text = value if isinstance(value, str) else format_timestamp(now + value)
                        etree.SubElement(stamp, f"{{{ns.WSU}}}{name}").text = text
            return envelope

        monkeypatch.setattr(messaging, "build_user_message", built)

    yield use
    monkeypatch.undo()


def _refused(rx: Receiver, sbd: bytes, invoice: bytes, with_timestamp: Callable[..., None], *stamps: Stamp) -> str:
    with_timestamp(*stamps)
    with rx.build(sbd) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0101")
        assert inspected_code(rx, message) == "EBMS:0101"  # one copy of the check: inspect says the same
    with_timestamp()  # the next message carries no Timestamp, as phase4's
    still_accepts_valid_traffic(rx, invoice)
    return str(error)


def _accepted(rx: Receiver, sbd: bytes, with_timestamp: Callable[..., None], *stamps: Stamp) -> None:
    with_timestamp(*stamps)
    with rx.build(sbd) as message:
        receipted(rx, rx.send(message), message.message_id, message.sent_references)
    assert len(rx.messages()) == 1


@pytest.mark.parametrize(("stamp", "named"), [
    pytest.param((-10 * MINUTE, -2 * MINUTE), "expired at", id="expired-2-minutes-ago"),
    pytest.param((-10 * MINUTE, -40 * MINUTE), "before it was created", id="expires-before-created"),
    pytest.param((2 * MINUTE, 10 * MINUTE), "in the future", id="created-2-minutes-ahead"),
    pytest.param((None, 5 * MINUTE), "0 wsu:Created", id="no-created"),
    pytest.param((timedelta(0), "tomorrow"), "unreadable wsu:Expires", id="unreadable-expires"),
])
def test_a_timestamp_outside_the_policy_is_ebms_0101(rx: Receiver, sbd: bytes, invoice: bytes,
                                                     with_timestamp: Callable[..., None], stamp: Stamp,
                                                     named: str) -> None:
    assert named in _refused(rx, sbd, invoice, with_timestamp, stamp)


def test_two_timestamps_are_ebms_0101(rx: Receiver, sbd: bytes, invoice: bytes,
                                      with_timestamp: Callable[..., None]) -> None:
    current = (timedelta(0), 5 * MINUTE)
    assert "occurs 2 times" in _refused(rx, sbd, invoice, with_timestamp, current, current)


@pytest.mark.parametrize("stamp", [
    pytest.param((timedelta(0), 5 * MINUTE), id="current"),
    pytest.param((-10 * MINUTE, -30 * timedelta(seconds=1)), id="expired-30-s-ago-inside-the-skew"),
    pytest.param((30 * timedelta(seconds=1), 5 * MINUTE), id="created-30-s-ahead-inside-the-skew"),
    pytest.param((timedelta(0), None), id="no-expires"),
    # WSS4J would also refuse a Created older than 300 s; we do not (no age limit, see as4/timestamp.py)
    pytest.param((-60 * MINUTE, 60 * MINUTE), id="created-an-hour-ago-expires-in-an-hour"),
])
def test_a_timestamp_inside_the_policy_is_accepted(rx: Receiver, sbd: bytes, with_timestamp: Callable[..., None],
                                                   stamp: Stamp) -> None:
    _accepted(rx, sbd, with_timestamp, stamp)


@pytest.mark.parametrize(("skew", "stamp", "accepted"), [
    # 30 s late, or 30 s early: refused without tolerance, accepted with 60 s
    pytest.param("0", (-10 * MINUTE, -30 * timedelta(seconds=1)), False, id="0s-expired-30-s-ago"),
    pytest.param("0", (30 * timedelta(seconds=1), 5 * MINUTE), False, id="0s-created-30-s-ahead"),
    # 2 minutes late or early: accepted with 5 minutes of tolerance, refused with the default (previous test)
    pytest.param("300", (-10 * MINUTE, -2 * MINUTE), True, id="300s-expired-2-minutes-ago"),
    pytest.param("300", (2 * MINUTE, 10 * MINUTE), True, id="300s-created-2-minutes-ahead"),
    pytest.param("300", (-20 * MINUTE, -6 * MINUTE), False, id="300s-expired-6-minutes-ago"),
])
def test_the_clock_skew_tolerance_is_a_setting(make_receiver: ReceiverFactory, sbd: bytes, invoice: bytes,
                                               with_timestamp: Callable[..., None], skew: str, stamp: Stamp,
                                               accepted: bool) -> None:
    rx = make_receiver(as4__timestamp_clock_skew_seconds=skew)
    rx.seed()
    if accepted:
        _accepted(rx, sbd, with_timestamp, stamp)
    else:
        assert f"clock skew tolerated: {skew} s" in _refused(rx, sbd, invoice, with_timestamp, stamp)
