"""Identifier case in our SMP, over real HTTP against the gateway's SMP: identifier schemes are case-insensitive
(Policy for use of Identifiers), and so are participant values under iso6523-actorid-upis, so an upper-cased scheme
finds the participant; document type values stay case-sensitive (an SMP must not match them in another case), and
an identifier we do not serve is still a 404 in any case."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests
from werkzeug.serving import make_server

from accesspoint.app import create_app
from accesspoint.store.models import BIS_BILLING_INVOICE, BIS_BILLING_PROCESS
from smp.servicemetadata import parse_service_group, parse_service_metadata, verify_signature
from tests.receiving.conftest import Receiver

INVOICE_SCHEME, INVOICE_VALUE = BIS_BILLING_INVOICE.split("::", 1)
PROCESS_VALUE = BIS_BILLING_PROCESS.split("::", 1)[1]


@pytest.fixture
def smp_url(rx: Receiver) -> Iterator[str]:
    """The gateway's app (its SMP under /smp) on a real HTTP server on 127.0.0.1."""
    server = make_server("127.0.0.1", 0, create_app(gateway=rx.gateway), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/smp"
    server.shutdown()
    server.server_close()


def _get(smp_url: str, participant: str, document_type: str | None = None) -> requests.Response:
    path = f"{smp_url}/{quote(participant, safe='')}"
    if document_type is not None:
        path += f"/services/{quote(document_type, safe='')}"
    return requests.get(path, timeout=10)


SPELLINGS = ["iso6523-actorid-upis::0002:FR23342", "ISO6523-ACTORID-UPIS::0002:FR23342",
             "Iso6523-ActorId-Upis::0002:fr23342", "ISO6523-ACTORID-UPIS::0002:fR23342"]


@pytest.mark.parametrize("participant", SPELLINGS)
def test_the_service_group_is_found_whatever_the_case_of_the_scheme(smp_url: str, participant: str) -> None:
    response = _get(smp_url, participant)
    assert response.status_code == 200, response.text
    group = parse_service_group(response.content)
    assert group.participant.scheme == "iso6523-actorid-upis"
    assert [(d.scheme, d.value) for d in group.document_types if d.value == INVOICE_VALUE] == [(INVOICE_SCHEME,
                                                                                                 INVOICE_VALUE)]


@pytest.mark.parametrize("participant", SPELLINGS)
@pytest.mark.parametrize("scheme", [INVOICE_SCHEME, INVOICE_SCHEME.upper()])
def test_signed_service_metadata_is_found_whatever_the_case_of_the_schemes(smp_url: str, participant: str,
                                                                           scheme: str) -> None:
    response = _get(smp_url, participant, f"{scheme}::{INVOICE_VALUE}")
    assert response.status_code == 200, response.text
    assert verify_signature(response.content).valid
    metadata = parse_service_metadata(response.content)
    # the answer names the identifiers in their own spelling, the value of the participant as registered
    assert metadata.participant is not None and metadata.document_type is not None
    assert (metadata.participant.scheme, metadata.participant.value.lower()) == ("iso6523-actorid-upis",
                                                                                 "0002:fr23342")
    assert (metadata.document_type.scheme, metadata.document_type.value) == (INVOICE_SCHEME, INVOICE_VALUE)
    assert [p.process.value for p in metadata.processes] == [PROCESS_VALUE]


def test_the_business_card_is_found_whatever_the_case_of_the_scheme(smp_url: str) -> None:
    response = requests.get(f"{smp_url}/businesscard/{quote(SPELLINGS[1], safe='')}", timeout=10)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("participant", "document_type"), [
    pytest.param("ISO6523-ACTORID-UPIS::0002:FR99999", None, id="unknown-participant"),
    pytest.param("ISO6523-ACTORID-UPIS::0002:FR23342", f"{INVOICE_SCHEME.upper()}::{INVOICE_VALUE.upper()}",
                 id="document-type-value-in-another-case"),
    pytest.param("ISO6523-ACTORID-UPISX::0002:FR23342", None, id="another-scheme"),
])
def test_what_we_do_not_serve_is_still_not_found(smp_url: str, participant: str, document_type: str | None) -> None:
    assert _get(smp_url, participant, document_type).status_code == 404
    assert _get(smp_url, SPELLINGS[0], f"{INVOICE_SCHEME}::{INVOICE_VALUE}").status_code == 200
