"""[as4] max_header_bytes: an oversized SOAP part is refused (EBMS:0009, HTTP 413) before it is parsed."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from accesspoint.config import ConfigError, load_config
from accesspoint.core.peppol.inbound import InboundLimits
from accesspoint.core.peppol.inspection import inspect_message
from accesspoint.core.peppol.outbound import OutgoingMessage
from tests.ops.helpers import value
from tests.receiving.conftest import Receiver, ReceiverFactory

FIVE_MB = 5 << 20


def with_huge_part_property(message: OutgoingMessage, size: int) -> bytes:
    """The message with a PartProperties value of `size` bytes added to its SOAP part (the root MIME part is
    sent binary, so the bytes can be edited in place; the signature no longer matches, which the cap must not
    even get to)."""
    body = b"".join(message.chunks())
    closing = re.compile(rb"</(\w+:)?PartProperties>")
    match = closing.search(body)
    assert match is not None
    prefix = match.group(1) or b""
    extra = b"<" + prefix + b'Property name="padding">' + b"A" * size + b"</" + prefix + b"Property>"
    return body[:match.start()] + extra + body[match.start():]


def test_five_megabyte_soap_part_is_refused_with_413(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as message:
        body = with_huge_part_property(message, FIVE_MB)
        content_type = message.content_type
    response = rx.post(body, content_type)
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "EBMS:0009" in text and "4194304" in text
    rx.assert_nothing_stored()
    metrics = rx.client.get("/metrics").get_data(as_text=True)
    assert value(metrics, "peppol_ap_as4_requests_total", outcome="refused", error_code="EBMS:0009") == 1
    # the gateway goes on as before
    with rx.build(sbd) as message:
        assert rx.send(message).status_code == 200
    assert len(rx.messages()) == 1


def test_the_cap_is_configurable(make_receiver: ReceiverFactory, sbd: bytes) -> None:
    rx = make_receiver(as4__max_header_bytes="2048")  # below any real signed Peppol header
    rx.seed()
    with rx.build(sbd) as message:
        response = rx.send(message)
    assert response.status_code == 413 and "EBMS:0009" in response.get_data(as_text=True)
    rx.assert_nothing_stored()


def test_inspection_reports_the_same_cap(rx: Receiver, sbd: bytes) -> None:
    with rx.build(sbd) as message:
        body = b"".join(message.chunks())
        content_type = message.content_type
    limits = inbound_limits({"PEPPOL_AP_AS4__MAX_HEADER_BYTES": "2048"})
    assert limits.max_header_bytes == 2048
    report = inspect_message(body, content_type, limits=limits, at=datetime.now(UTC))
    assert not report.valid
    [failed] = [step for step in report.steps if step.status == "failed"]
    assert failed.name == "soap" and failed.error is not None and failed.error.code == "EBMS:0009"
    # with the default cap the same message is parsed and analysed as usual
    default = inspect_message(body, content_type, at=datetime.now(UTC))
    assert default.message_id is not None and default.kind == "user-message"
    assert all(step.error is None or step.error.code != "EBMS:0009" for step in default.steps)


def inbound_limits(environ: dict[str, str]) -> InboundLimits:
    return InboundLimits(**load_config(environ=environ).as4.model_dump())


def test_defaults_agree() -> None:
    # inspect and the receiver share InboundLimits; its defaults are those of conf/default.toml
    assert InboundLimits() == inbound_limits({})
    assert InboundLimits().max_header_bytes == 4194304


@pytest.mark.parametrize(("variable", "value_", "message"), [
    ("PEPPOL_AP_AS4__MAX_HEADER_BYTES", "100", "as4.max_header_bytes: must be at least 1024"),
    ("PEPPOL_AP_STORAGE__ORPHAN_GRACE_MINUTES", "0", "storage.orphan_grace_minutes: must be at least 1"),
    ("PEPPOL_AP_STORAGE__ORPHAN_SWEEP_MINUTES", "-5", "storage.orphan_sweep_minutes: must be at least 1"),
])
def test_bad_settings_stop_start_up(variable: str, value_: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ={variable: value_})
