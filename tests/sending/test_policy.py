"""Pieces of the sending policy on their own: backoff, circuit breaker, settings, MessageId reuse."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accesspoint.adapters.transport import CircuitBreaker, HttpAnswer, TransportError, endpoint_key
from accesspoint.app import create_app
from accesspoint.config import ConfigError, SendingSettings, load_config
from accesspoint.flows.sending import Failure, backoff, judge_answer, next_state, reuse_message_id
from accesspoint.store.models import Attempt, AttemptOutcome, Message, MessageState


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    settings = SendingSettings(retry_initial=60, retry_max=600)
    rng = random.Random(7)
    for attempt, base in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (12, 600)]:
        delays = {backoff(attempt, settings, rng) for _ in range(20)}
        assert all(timedelta(seconds=base / 2) <= d <= timedelta(seconds=base) for d in delays)
        assert len(delays) > 1  # jitter: messages failing together come back spread out


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TRANSIENT = Failure(transient=True, code="timeout", reason="no answer within 120 s", hint="It is tried again.")


def _next(failure: Failure, *, failures: int = 1, deadline: datetime | None = None):  # type: ignore[no-untyped-def]
    return next_state(failure, transient_failures=failures, attempts=failures, deadline_at=deadline,
                      message_id="m-1", settings=SendingSettings(retry_initial=60, retry_max=600), now=NOW,
                      rng=random.Random(3))


def test_a_transient_failure_is_retried_after_the_backoff() -> None:
    for failures, base in [(1, 60), (2, 120), (5, 600)]:
        after = _next(TRANSIENT, failures=failures)
        assert after.state == MessageState.RETRYING
        assert after.retry_at is not None
        assert NOW + timedelta(seconds=base / 2) <= after.retry_at <= NOW + timedelta(seconds=base)
        assert (after.reason, after.hint) == (TRANSIENT.reason, TRANSIENT.hint)


def test_the_retry_waits_for_the_circuit_breaker() -> None:
    later = NOW + timedelta(hours=1)
    failure = Failure(transient=True, code="circuit-open", reason="open", hint="wait", not_before=later)
    assert _next(failure).retry_at == later


def test_a_retry_past_the_deadline_fails_with_the_retry_hint() -> None:
    after = _next(TRANSIENT, failures=3, deadline=NOW + timedelta(seconds=10))
    assert after.state == MessageState.FAILED and after.retry_at is None
    assert after.reason == ("gave up after 3 attempt(s) by the deadline 2026-06-01 12:00:10 UTC; last error: "
                            "no answer within 120 s")
    assert after.hint.startswith("It is tried again. The sending deadline (sending.deadline_hours) has passed")
    assert after.hint.endswith("POST /api/v1/outbound/m-1/retry to try again.")


def test_a_permanent_failure_fails_at_once() -> None:
    failure = Failure(transient=False, code="EBMS:0004", reason="rejected", hint="fix the document")
    after = _next(failure, deadline=NOW + timedelta(days=1))
    assert (after.state, after.retry_at, after.reason, after.hint) == (MessageState.FAILED, None, "rejected",
                                                                       "fix the document")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_circuit_breaker_opens_then_probes_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, open_seconds=60, clock=clock)
    for _ in range(3):
        breaker.before_call("http://b:80")
        breaker.record("http://b:80", healthy=False)
    with pytest.raises(TransportError) as opened:
        breaker.before_call("http://b:80")
    assert opened.value.kind == "circuit-open" and not opened.value.reached_peer
    breaker.before_call("http://c:80")  # one dead endpoint does not block another
    clock.now += 61
    breaker.before_call("http://b:80")  # half-open: this call probes
    with pytest.raises(TransportError):
        breaker.before_call("http://b:80")  # others wait for the probe
    breaker.record("http://b:80", healthy=True)
    breaker.before_call("http://b:80")
    breaker.before_call("http://b:80")  # closed again: every call goes through


def test_failed_probe_reopens_the_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, open_seconds=10, clock=clock)
    breaker.record("k", healthy=False)
    clock.now += 11
    breaker.before_call("k")
    breaker.record("k", healthy=False)
    with pytest.raises(TransportError):
        breaker.before_call("k")  # open again for another open_seconds


def test_endpoint_key_groups_by_origin() -> None:
    assert endpoint_key("https://AP.example/as4") == endpoint_key("https://ap.example:443/other") == \
        "https://ap.example:443"
    assert endpoint_key("http://127.0.0.1:8080/as4") == "http://127.0.0.1:8080"


def test_settings_from_configuration_are_checked() -> None:
    settings = SendingSettings.from_config(load_config(environ={}))
    assert (settings.connect_timeout, settings.response_timeout) == (5.0, 120.0)
    with pytest.raises(ConfigError, match=r"sending\.retry_max_seconds"):
        SendingSettings.from_config(load_config(environ={"PEPPOL_AP_SENDING__RETRY_MAX_SECONDS": "1",
                                                         "PEPPOL_AP_SENDING__RETRY_INITIAL_SECONDS": "10"}))
    with pytest.raises(ConfigError, match=r"sending\.lease_seconds"):
        SendingSettings.from_config(load_config(environ={"PEPPOL_AP_SENDING__LEASE_SECONDS": "60"}))
    with pytest.raises(ConfigError, match=r"sending\.deadline_hours"):
        SendingSettings.from_config(load_config(environ={"PEPPOL_AP_SENDING__DEADLINE_HOURS": "0"}))


def _message(*attempts: tuple[str | None, str | None, str | None]) -> Message:
    message = Message(as4_message_id="a@b")
    message.attempt_log = [Attempt(number=n, endpoint_url=url, outcome=outcome, error_code=code)
                           for n, (url, outcome, code) in enumerate(attempts, 1)]
    return message


@pytest.mark.parametrize(("attempts", "reuse"), [
    ([("u", AttemptOutcome.TRANSIENT, "connection")], True),
    ([("u", AttemptOutcome.TRANSIENT, "timeout"), ("u", AttemptOutcome.TRANSIENT, "circuit-open")], True),
    ([("u", AttemptOutcome.TRANSIENT, "timeout"), (None, AttemptOutcome.TRANSIENT, "discovery-unavailable")], True),
    ([("u", AttemptOutcome.TRANSIENT, "http-503")], False),
    ([("u", AttemptOutcome.PERMANENT, "EBMS:0004")], False),
    ([("u", AttemptOutcome.TRANSIENT, "connection"), ("u", AttemptOutcome.PERMANENT, "EBMS:0302")], False),
    ([(None, AttemptOutcome.PERMANENT, "participant-not-registered")], False),
])
def test_message_id_is_kept_only_after_an_unanswered_try(attempts: list[tuple[str | None, str, str]],
                                                         reuse: bool) -> None:
    assert reuse_message_id(_message(*attempts)) is reuse


@pytest.mark.parametrize(("status", "content_type", "body", "transient"), [
    (400, "text/plain", b"Bad Request: no SOAP header", False),  # phase4: our message is malformed
    (503, "text/html", b"<html>maintenance</html>", True),  # a proxy in front of a restarting AP
    (500, "text/plain", b"", True),
    (429, "text/plain", b"slow down", True),
    (200, "application/soap+xml", b"", False),  # 200 without a receipt is never a success
])
def test_answers_without_an_ebms_signal(status: int, content_type: str, body: bytes, transient: bool) -> None:
    result = judge_answer(HttpAnswer(status, content_type, body, 0.1), "m@x", [], None,  # type: ignore[arg-type]
                          lambda cert: None)
    assert isinstance(result, Failure)
    assert result.transient is transient and result.code == f"http-{status}" and result.http_status == status
    assert f"HTTP {status} without an AS4 signal" in result.reason


def test_the_app_refuses_to_start_with_bad_sending_settings(tmp_path: Path) -> None:
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(tmp_path), "PEPPOL_AP_SENDING__LEASE_SECONDS": "10"}
    with pytest.raises(ConfigError, match=r"sending\.lease_seconds"):
        create_app(load_config(environ=env))
