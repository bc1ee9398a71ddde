"""The inbound extension points of DESIGN.md: inbound checks (after the AS4 steps, before the receipt; `inspect` runs
those that need no database) and post-receipt actions (in the transaction that stores the message)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from accesspoint.core import OTHER, As4Error, inspect_message
from accesspoint.core.sbdh import Sbdh, build_sbd, sbdh_from_ubl
from accesspoint.flows import receiving
from accesspoint.flows.receiving import Accepting, InboundCheck, PostReceiptAction, offline_checks
from accesspoint.store.models import Message
from tests.receiving.conftest import Receiver
from tests.receiving.test_receive import refused_with

BLOCKED_COUNTRY = "NO"


def _no_norwegian_senders(accepting: Accepting) -> None:
    if accepting.sbdh.country_c1 == BLOCKED_COUNTRY:
        raise As4Error(OTHER, f"this access point accepts nothing from C1 country {BLOCKED_COUNTRY}")


@pytest.fixture
def country_check(monkeypatch: pytest.MonkeyPatch) -> None:
    check = InboundCheck("country", _no_norwegian_senders, needs_database=False)
    monkeypatch.setattr(receiving, "INBOUND_CHECKS", (*receiving.INBOUND_CHECKS, check))


@pytest.mark.usefixtures("country_check")
def test_an_inbound_check_refuses_before_anything_is_stored_and_inspect_agrees(rx: Receiver, invoice: bytes) -> None:
    for country, expected in (("NO", OTHER), ("SE", None)):
        sbd = build_sbd(sbdh_from_ubl(invoice, country_c1=country, creation=datetime.now(UTC)), invoice)
        with rx.build(sbd) as message:
            body, content_type = b"".join(message.chunks()), message.content_type
        report = inspect_message(body, content_type, keys=[rx.gateway.key], validator=rx.gateway.validator,
                                 checks=offline_checks(), at=datetime.now(UTC))
        assert [s.status for s in report.steps if s.name == "country"] == ["failed" if expected else "ok"]
        assert (report.ebms_error.code if report.ebms_error else None) == expected
        response = rx.post(body, content_type)
        if expected is not None:
            error = refused_with(rx, response, expected)
            assert "C1 country NO" in str(error)
        else:
            assert [m.country_c1 for m in rx.messages()] == ["SE"]


def test_the_database_check_is_not_offered_to_inspect() -> None:
    assert [name for name, _ in offline_checks()] == []
    assert [check.name for check in receiving.INBOUND_CHECKS] == ["served"]


def test_post_receipt_actions_run_in_the_storing_transaction(rx: Receiver, sbd: bytes,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    def note(session: Session, message: Message, sbdh: Sbdh) -> None:
        # the message is flushed but not committed: the action's work commits (or not) with it
        assert session.get(Message, message.id) is message
        seen.append((message.id, sbdh.instance_identifier))

    monkeypatch.setattr(receiving, "POST_RECEIPT_ACTIONS", (*receiving.POST_RECEIPT_ACTIONS,
                                                            PostReceiptAction("note", note)))
    with rx.build(sbd) as message:
        response = rx.send(message)
    assert response.status_code == 200
    [stored] = rx.messages()
    assert seen == [(stored.id, stored.sbdh_instance_id)]
    assert rx.event_count() == 1  # the hand-over still ran


def test_a_failing_post_receipt_action_stores_nothing_and_sends_no_receipt(rx: Receiver, sbd: bytes,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(session: Session, message: Message, sbdh: Sbdh) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(receiving, "POST_RECEIPT_ACTIONS", (*receiving.POST_RECEIPT_ACTIONS,
                                                            PostReceiptAction("broken", broken)))
    with rx.build(sbd) as message:
        response = rx.send(message)
    # a fault of ours: HTTP 500, which the sender retries; no receipt for a message we did not keep
    assert response.status_code == 500
    rx.assert_nothing_stored()

