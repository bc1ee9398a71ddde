"""`submit`, the one door for outbound documents: the outbound checks at the single exit of its preparation and
the size limit are answered by every door in its own form (a problem document from the API, one line from the
CLI), and a refused document leaves nothing queued or stored."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from accesspoint.app import create_app
from accesspoint.cli.main import cli
from accesspoint.flows import submission
from accesspoint.flows.submission import DocumentTooLarge, OutboundCheck, Prepared, SubmissionError, submit
from accesspoint.gateway import Gateway
from accesspoint.store.models import Message
from smp.identifiers import ParticipantId
from tests.sending.harness import RECEIVER, SENDER, Network, invoice, network

BLOCKED = SENDER


def refuse_sender(blocked: ParticipantId) -> OutboundCheck:
    """An outbound check as BIS validation is one: it judges the prepared document and refuses by raising."""
    def check(_gateway: Gateway, prepared: Prepared) -> Prepared:
        if prepared.sbdh.sender.uri == blocked.uri:
            raise SubmissionError("sender", f"{blocked.value} may not send through this gateway", "sender-blocked")
        return prepared
    return check


def queued(net: Network) -> int:
    with net.gateway.read() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


def stored_blobs(net: Network) -> list[Path]:
    return [path for path in net.gateway.blobs.root.rglob("*") if path.is_file()]


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    with network(tmp_path, env={"PEPPOL_AP_AS4__MAX_PAYLOAD_BYTES": "100000"}) as built:
        for name, value in built.env.items():
            monkeypatch.setenv(name, value)  # the CLI builds its own gateway from the environment
        yield built


@pytest.fixture
def document(vectors: Path) -> bytes:
    return invoice(vectors / "bis" / "base-example.xml")


def post(net: Network, body: bytes):  # type: ignore[no-untyped-def]
    client = create_app(gateway=net.gateway).test_client()
    return client.post("/api/v1/outbound", data=body, content_type="application/xml",
                       headers={"Authorization": f"Bearer {net.token}"})


def test_the_checks_see_the_prepared_document_in_order(net: Network, document: bytes,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, Prepared]] = []

    def noting(name: str) -> OutboundCheck:
        def check(_gateway: Gateway, prepared: Prepared) -> Prepared:
            seen.append((name, prepared))
            return prepared
        return check

    monkeypatch.setattr(submission, "OUTBOUND_CHECKS", (noting("first"), noting("second")))
    accepted = submit(net.gateway, io.BytesIO(document), receiver=RECEIVER.value)
    assert [name for name, _ in seen] == ["first", "second"]
    prepared = seen[0][1]
    assert prepared.sbdh.sender.uri == SENDER.uri and prepared.sbdh.receiver.uri == RECEIVER.uri
    assert prepared.organisation_id == net.organisation_id
    assert prepared.sbd.startswith(b"<") and b"StandardBusinessDocumentHeader" in prepared.sbd
    assert accepted.message.sender == SENDER.uri and not accepted.replayed


def test_a_refusing_check_is_a_problem_from_the_api_and_one_line_from_the_cli(
        net: Network, document: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submission, "OUTBOUND_CHECKS", (refuse_sender(BLOCKED),))

    response = post(net, document)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["field"] == "sender" and problem["code"] == "sender-blocked"
    assert problem["detail"] == f"sender: {BLOCKED.value} may not send through this gateway"

    path = tmp_path / "invoice.xml"
    path.write_bytes(document)
    refused = CliRunner().invoke(cli, ["send", str(path)])
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [f"peppol-ap: {path}: sender: {BLOCKED.value} may not send through "
                                           "this gateway"]

    assert queued(net) == 0 and stored_blobs(net) == []


def test_a_document_over_the_limit_is_refused_by_every_door(net: Network, document: bytes, tmp_path: Path) -> None:
    large = document.replace(b"</Invoice>", b"<!--" + b"x" * 100_000 + b"--></Invoice>")

    response = post(net, large)
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "the document is larger than 100000 bytes (as4.max_payload_bytes)"

    path = tmp_path / "large.xml"
    path.write_bytes(large)
    refused = CliRunner().invoke(cli, ["send", str(path)])
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [f"peppol-ap: {path}: document: the document is larger than 100000 "
                                           "bytes (as4.max_payload_bytes)"]

    # without a declared size (a chunked request) the limit holds on what is read
    with pytest.raises(DocumentTooLarge):
        submit(net.gateway, io.BytesIO(large))
    assert queued(net) == 0 and stored_blobs(net) == []

    accepted = submit(net.gateway, io.BytesIO(document), declared_size=len(document))
    assert queued(net) == 1 and accepted.message.document_size == len(document)
