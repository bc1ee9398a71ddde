"""BIS validation before sending: the outbound check refuses a document with fatal findings (every door), keeps
warnings with the message, obeys the organisation's validation_mode, and never sends unvalidated."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from accesspoint.app import create_app
from accesspoint.cli.main import cli
from accesspoint.flows.submission import RulesNotInstalled, submit
from accesspoint.store.models import Message, Organisation
from tests.sending.harness import Network, invoice, network


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    with network(tmp_path) as built:
        for name, value in built.env.items():
            monkeypatch.setenv(name, value)  # the CLI builds its own gateway from the environment
        yield built


def post(net: Network, body: bytes):  # type: ignore[no-untyped-def]
    client = create_app(gateway=net.gateway).test_client()
    return client.post("/api/v1/outbound", data=body, content_type="application/xml",
                       headers={"Authorization": f"Bearer {net.token}"})


def queued(net: Network) -> list[Message]:
    with net.gateway.read() as session:
        return list(session.scalars(select(Message)))


def test_a_fatal_finding_refuses_the_submission_with_every_finding(net: Network, vectors: Path) -> None:
    document = invoice(vectors / "bis/invalid/invalid-BR-CO-10.xml")
    response = post(net, document)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["title"] == "Not Peppol BIS compliant" and problem["code"] == "bis-validation"
    assert problem["release"] == "2026.5"
    assert [(f["rule_id"], f["flag"], f["line"]) for f in problem["findings"]] == [
        ("BR-CO-10", "fatal", 139), ("BR-CO-13", "fatal", 139)]
    finding = problem["findings"][0]
    assert finding["message"].startswith("[BR-CO-10]-Sum of Invoice line net amount")
    assert "LegalMonetaryTotal" in finding["location"]
    assert "BR-CO-10, BR-CO-13" in problem["detail"]
    assert queued(net) == []


def test_an_xsd_error_refuses_too(net: Network, vectors: Path) -> None:
    response = post(net, invoice(vectors / "bis/invalid/invalid-XSD-unknown-element.xml"))
    assert response.status_code == 422
    assert [f["rule_id"] for f in response.get_json()["findings"]] == ["UBL-XSD"]


def test_the_cli_prints_the_findings_and_exits_1(net: Network, vectors: Path, tmp_path: Path) -> None:
    path = tmp_path / "invoice.xml"
    path.write_bytes(invoice(vectors / "bis/invalid/invalid-BR-CO-15.xml"))
    result = CliRunner().invoke(cli, ["send", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: fatal BR-CO-15 [BR-CO-15]-Invoice total amount with VAT" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"peppol-ap: {path}: document: not Peppol BIS compliant")
    assert queued(net) == []


def shown(validation: dict[str, Any]) -> dict[str, Any]:
    """The stored report of a `validation` object as the API shows it (every field of the model, null if unset)."""
    return {k: v for k, v in validation.items() if v is not None}


def test_warnings_come_with_the_202_and_are_stored(net: Network, vectors: Path) -> None:
    response = post(net, invoice(vectors / "bis/SE-invoice-from-unit-UBL-SE-R-013.xml"))
    assert response.status_code == 202, response.get_json()
    validation = response.get_json()["validation"]
    assert validation["status"] == "warnings" and validation["release"] == "2026.5"
    assert [(f["rule_id"], f["flag"]) for f in validation["findings"]] == [("UBL-CR-679", "warning")]
    [message] = queued(net)
    # the API shows every field of the model (null where the stored report has none)
    assert message.validation == shown(validation)
    status = create_app(gateway=net.gateway).test_client().get(
        f"/api/v1/outbound/{message.id}", headers={"Authorization": f"Bearer {net.token}"})
    assert status.get_json()["validation"] == validation


def test_a_valid_document_says_valid(net: Network, vectors: Path) -> None:
    response = post(net, invoice(vectors / "bis/base-example.xml"))
    assert response.status_code == 202
    assert response.get_json()["validation"]["status"] == "valid"


def test_warn_mode_sends_with_fatal_findings_and_says_so(net: Network, vectors: Path) -> None:
    with net.gateway.read() as session:
        session.get(Organisation, net.organisation_id).validation_mode = "warn"  # type: ignore[union-attr]
    response = post(net, invoice(vectors / "bis/invalid/invalid-BR-CO-10.xml"))
    assert response.status_code == 202
    validation = response.get_json()["validation"]
    assert validation["status"] == "invalid" and validation["sent_despite_fatal_findings"] is True
    assert "not BIS compliant" in validation["warning"] and "'warn'" in validation["warning"]
    assert {f["rule_id"] for f in validation["findings"]} == {"BR-CO-10", "BR-CO-13"}
    [message] = queued(net)
    assert message.validation == shown(validation) and message.state == "queued"


def test_without_rules_nothing_is_sent_unvalidated(tmp_path: Path, vectors: Path) -> None:
    with network(tmp_path, env={"PEPPOL_AP_VALIDATION__RULES_DIR": str(tmp_path / "no-rules")}) as net:
        response = post(net, invoice(vectors / "bis/base-example.xml"))
        assert response.status_code == 503 and response.mimetype == "application/problem+json"
        problem = response.get_json()
        assert problem["code"] == "bis-rules-not-installed" and "peppol-ap rules install" in problem["detail"]
        with pytest.raises(RulesNotInstalled):
            submit(net.gateway, io.BytesIO(invoice(vectors / "bis/base-example.xml")))
        with net.gateway.read() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == 0
