"""What the AS4 attack classes share: the refusal as the sender sees it, and the proof that the gateway still takes
a valid message afterwards. Messages are built with the project's own sending code; each test breaks one thing."""

from __future__ import annotations

from datetime import UTC, datetime

from accesspoint.core.as4 import messaging
from accesspoint.core.as4.receipts import verify_receipt
from accesspoint.core.peppol.inspection import inspect_message
from accesspoint.core.peppol.outbound import OutgoingMessage
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.flows.receiving import offline_checks
from tests.receiving.conftest import Receiver


def refused_with(rx: Receiver, response, code: str) -> messaging.ErrorSignal:  # type: ignore[no-untyped-def]
    """The answer is a signed ebMS Error with exactly `code`, and nothing was stored (no message, event or blob)."""
    assert response.status_code == 200, response.data[:300]
    parsed = messaging.parse_envelope_bytes(response.data)
    assert parsed.error is not None and parsed.receipt is None, response.data[:500]
    assert parsed.error.codes == (code,), str(parsed.error)
    rx.assert_nothing_stored()
    return parsed.error


def receipted(rx: Receiver, response, message_id: str, sent_references: list) -> None:  # type: ignore[no-untyped-def,type-arg]
    """The answer is a valid signed receipt for `message_id`."""
    assert response.status_code == 200, response.data[:300]
    verdict = verify_receipt(response.data, sent_message_id=message_id, sent_references=sent_references)
    assert verdict.valid, verdict.problems


def still_accepts_valid_traffic(rx: Receiver, invoice: bytes) -> None:
    """A fresh, valid message is receipted and stored after the attack (one more stored message than before)."""
    before = len(rx.messages())
    sbd = build_sbd(sbdh_from_ubl(invoice, country_c1="NO", creation=datetime.now(UTC)), invoice)
    with rx.build(sbd) as message:
        receipted(rx, rx.send(message), message.message_id, message.sent_references)
    assert len(rx.messages()) == before + 1


def inspected_code(rx: Receiver, message: OutgoingMessage) -> str | None:
    """The ebMS code `inspect` finds for the message (None: valid), which must be the receiver's."""
    report = inspect_message(b"".join(message.chunks()), message.content_type, keys=[rx.gateway.key],
                             validator=rx.gateway.validator, checks=offline_checks(), at=datetime.now(UTC),
                             limits=rx.gateway.inbound_limits)
    return report.ebms_error.code if report.ebms_error is not None else None
