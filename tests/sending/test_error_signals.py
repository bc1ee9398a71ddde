"""How the sender reads a receiving AP's ebMS Error signal: permanent or not, and the hint a person gets."""

from __future__ import annotations

from accesspoint.core.as4.messaging import ErrorDetail, ErrorSignal
from accesspoint.flows.sending import classify_error_signal, is_duplicate_answer

OUR_ID = "6e395939-3714-44bc-8a3b-18a37b3ef893@gateway.example"


def _signal(code: str, description: str | None, detail: str | None, severity: str = "failure") -> ErrorSignal:
    error = ErrorDetail(code=code, severity=severity, short_description="Other", category="Content",
                        origin="ebMS", ref_to_message_in_error=OUR_ID, description=description, detail=detail)
    return ErrorSignal(message_id="answer@phase4", timestamp=None, ref_to_message_id=OUR_ID, errors=(error,))


def test_phase4_4_4_duplicate_answer_is_recognised() -> None:
    # verbatim from phase4 4.4.1 (tests/interop/phase4, gateway -> phase4 resend scenario)
    signal = _signal("EBMS:0004", "An undefined error occurred.",
                     f"Not invoking SPIs, because message with Message ID '{OUR_ID}' was already handled "
                     "(this is a duplicate)")
    failure = classify_error_signal(signal, 200)
    assert is_duplicate_answer(signal)
    assert not failure.transient
    assert failure.code == "EBMS:0004"
    assert "probably received the document" in failure.hint


def test_ebms_4001_is_a_duplicate_answer() -> None:
    signal = _signal("EBMS:4001", None, None)
    assert is_duplicate_answer(signal)
    assert "probably received the document" in classify_error_signal(signal, 200).hint


def test_other_ebms_0004_is_not_a_duplicate_answer() -> None:
    signal = _signal("EBMS:0004", "An undefined error occurred.", "SBDH: COUNTRY_C1 is missing")
    failure = classify_error_signal(signal, 200)
    assert not is_duplicate_answer(signal)
    assert "probably received" not in failure.hint
    assert "check the document" in failure.hint
