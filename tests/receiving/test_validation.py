"""BIS validation after receiving: the receipt answers transport and envelope only; the post-receipt action marks
the message, the worker validates it, stores the report, tells the network (`inbound.validated`), and the inbound
API item shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from accesspoint.core.sbdh import build_sbd, sbdh_from_ubl
from accesspoint.flows.validation import validate_due
from accesspoint.flows.webhooks import INBOUND_VALIDATED
from accesspoint.store.models import ApiClient, ApiRole, Event
from tests.receiving.conftest import Receiver, ReceiverFactory


def _sbd(document: bytes) -> bytes:
    return build_sbd(sbdh_from_ubl(document, country_c1="NO", creation=datetime.now(UTC)), document)


def _receive(rx: Receiver, document: bytes) -> str:
    with rx.build(_sbd(document)) as message:
        assert rx.send(message).status_code == 200
    return rx.messages()[-1].id


def _item(rx: Receiver, organisation_id: int, message_id: str) -> dict:  # type: ignore[type-arg]
    with rx.gateway.read() as session:
        client, token = ApiClient.issue("erp", ApiRole.NETWORK, organisation_id)
        session.add(client)
    response = rx.client.get(f"/api/v1/inbound/{message_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]


def test_an_invalid_invoice_is_receipted_then_its_findings_are_stored_and_told(
        make_receiver: ReceiverFactory, vectors: Path) -> None:
    rx = make_receiver()
    organisation_id = rx.seed()
    message_id = _receive(rx, (vectors / "bis/invalid/invalid-BR-CO-10.xml").read_bytes())
    pending = _item(rx, organisation_id, message_id)["validation"]
    assert (pending["status"], pending["findings"]) == ("pending", [])

    assert validate_due(rx.gateway) == 1
    validation = _item(rx, organisation_id, message_id)["validation"]
    assert validation["status"] == "invalid" and validation["release"] == "2026.5"
    assert [(f["rule_id"], f["flag"], f["line"]) for f in validation["findings"]] == [
        ("BR-CO-10", "fatal", 139), ("BR-CO-13", "fatal", 139)]
    with rx.gateway.read() as session:
        [event] = session.scalars(select(Event).where(Event.type == INBOUND_VALIDATED)).all()
        assert event.message_id == message_id
        assert event.data["validation"] == {k: v for k, v in validation.items() if v is not None}
    assert validate_due(rx.gateway) == 0  # done once


def test_a_valid_invoice_gets_a_clean_report(rx: Receiver, vectors: Path) -> None:
    message_id = _receive(rx, (vectors / "bis/base-example.xml").read_bytes())
    validate_due(rx.gateway)
    [stored] = rx.messages()
    assert stored.id == message_id and stored.validation_due_at is None
    assert stored.validation is not None
    assert (stored.validation["status"], stored.validation["findings"]) == ("valid", [])


def test_without_rules_the_message_is_still_receipted_and_validated_later(
        make_receiver: ReceiverFactory, vectors: Path, tmp_path: Path) -> None:
    rx = make_receiver(validation__rules_dir=str(tmp_path / "none"))
    rx.seed()
    _receive(rx, (vectors / "bis/base-example.xml").read_bytes())
    assert validate_due(rx.gateway) == 1
    [stored] = rx.messages()
    assert stored.validation is None and stored.validation_due_at is not None  # retried later
    assert stored.validation_due_at > datetime.now(UTC)
