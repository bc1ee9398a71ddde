"""`inspect` and `POST /as4` reach the same verdict and the same ebMS code for validly signed messages.

The bug this guards against: a signed message whose eb:Action or eb:Service disagrees with the SBDH was refused
with EBMS:0004 by the receiver while `inspect` called it valid, because the two had their own copies of the checks.
Random byte flips break the signature before the later checks run, so the property test generates messages that
are signed correctly and differ only in their ebMS header and SBDH values.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accesspoint.core.as4 import messaging, mime
from accesspoint.core.as4.messaging import Participant
from accesspoint.core.peppol.inspection import inspect_message
from accesspoint.core.peppol.outbound import seal, user_message_for
from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.flows.receiving import offline_checks
from accesspoint.store.models import BIS_BILLING_CREDIT_NOTE
from smp.identifiers import ParticipantId
from tests.receiving.conftest import Receiver

NOW = datetime.now(UTC)  # the tests' time for what they build

UPIS = "iso6523-actorid-upis"
OTHER_PROCESS = "urn:fdc:peppol.eu:2017:poacc:selfbilling:01:1.0"


def _verdicts(rx: Receiver, invoice: bytes, *, country: str = "NO", sbdh_sender: ParticipantId | None = None,
              **changes: object) -> tuple[str | None, str | None]:
    """(the receiver's answer, inspect's answer) for one signed message: None for a receipt, else the ebMS code.

    The SBDH is derived from the invoice (C1 `country`, sender `sbdh_sender` if given) and the ebMS header from the
    SBDH; `changes` then alter the header. The SBDH receiver stays one the gateway serves: whether we serve a
    participant needs the database, which `inspect` does not have."""
    sbdh = sbdh_from_ubl(invoice, country_c1=country,
                         creation=NOW)  # a fresh InstanceIdentifier: no duplicate between examples
    if sbdh_sender is not None:
        sbdh = dataclasses.replace(sbdh, sender=sbdh_sender)
    sbd = build_sbd(sbdh, invoice)
    signer = rx.keys.sender
    user_message = user_message_for(sbdh, from_party=signer.subject_cn, to_party=rx.gateway.seat_id,
                                    content_id=mime.new_content_id(), domain="sender.example", now=datetime.now(UTC))
    message = seal(dataclasses.replace(user_message, **changes), io.BytesIO(sbd), sbdh,
                   our_key=signer, recipient_cert=rx.certificate)
    body = b"".join(message.chunks())
    report = inspect_message(body, message.content_type, keys=[rx.gateway.key], validator=rx.gateway.validator,
                             checks=offline_checks(), at=datetime.now(UTC))
    inspected = report.ebms_error.code if report.ebms_error is not None else None
    assert report.valid == (inspected is None)
    response = rx.post(body, message.content_type)
    assert response.status_code == 200, response.data[:300]
    parsed = messaging.parse_envelope_bytes(response.data)
    answered = parsed.error.codes[0] if parsed.error is not None else None
    return answered, inspected


def test_action_disagreeing_with_the_sbdh_document_type(rx: Receiver, invoice: bytes) -> None:
    answered, inspected = _verdicts(rx, invoice, action=f"busdox-docid-qns::{BIS_BILLING_CREDIT_NOTE}")
    assert answered == inspected == "EBMS:0004"


def test_service_disagreeing_with_the_sbdh_process(rx: Receiver, invoice: bytes) -> None:
    answered, inspected = _verdicts(rx, invoice, service=OTHER_PROCESS)
    assert answered == inspected == "EBMS:0004"


def test_an_unchanged_message_is_valid_for_both(rx: Receiver, invoice: bytes) -> None:
    assert _verdicts(rx, invoice) == (None, None)


_participants = st.sampled_from([
    None,  # keep what the SBDH says
    Participant(UPIS, "0002:fr23342"),  # the same participant in other letter case: still the same
    Participant(UPIS, "0002:FR99999"),
    Participant(UPIS, "0088:7300010000001"),
    Participant(None, "0002:FR23342"),  # no type attribute
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from([None, f"busdox-docid-qns::{BIS_BILLING_CREDIT_NOTE}", "busdox-docid-qns::urn:x:y"]),
    service=st.sampled_from([None, OTHER_PROCESS]),
    service_type=st.sampled_from([None, "cenbii-procid-ubl", "other-procid"]),
    original_sender=_participants,
    final_recipient=_participants,
    country=st.sampled_from(["NO", "SE", "GB"]),
    sbdh_sender=st.sampled_from([None, ParticipantId(UPIS, "0007:5567321707"),
                                 ParticipantId(UPIS, "0088:7300010000001")]),
)
def test_inspect_answers_what_the_receiver_answers(rx: Receiver, invoice: bytes, action: str | None,
                                                   service: str | None, service_type: str | None,
                                                   original_sender: Participant | None,
                                                   final_recipient: Participant | None, country: str,
                                                   sbdh_sender: ParticipantId | None) -> None:
    changes = {key: value for key, value in (("action", action), ("service", service), ("service_type", service_type),
                                             ("original_sender", original_sender),
                                             ("final_recipient", final_recipient)) if value is not None}
    answered, inspected = _verdicts(rx, invoice, country=country, sbdh_sender=sbdh_sender, **changes)
    assert answered == inspected, (changes, country, sbdh_sender)
