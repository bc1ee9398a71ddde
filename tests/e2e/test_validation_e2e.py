"""BIS validation end to end, on two gateway processes (A sends, B receives) and the independent `as4` sender: an
invalid invoice is refused at A's submit with its rule ids; a valid one is sent and B stores a clean report after
the receipt; an invalid one sent to B by `as4` is receipted, and B's inbound item shows its findings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from certs.keystore import load_pem
from tests.e2e.send_world import SendWorld, X, Y, send_world, token_for
from tests.interop.as4peer.venv import ensure_as4_python
from tests.interop.keys import PeerParty
from tests.interop.peers import Parties, peer_send
from tests.sending.harness import invoice

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SendWorld]:
    with send_world(tmp_path_factory.mktemp("validation-e2e")) as built:
        built.start_workers(1)
        built.start_workers(1, built.b)  # B's worker validates what B received
        yield built


def b_item(world: SendWorld, as4_message_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """B's inbound item of the message, once B's worker has validated it."""
    auth = {"Authorization": f"Bearer {token_for(world.b, Y)}"}
    deadline = time.monotonic() + timeout
    while True:
        listed = requests.get(f"{world.b.url}/api/v1/inbound", headers=auth, timeout=30).json()["items"]
        found = [i for i in listed if i["as4_message_id"] == as4_message_id]
        if found and found[0]["validation"]["status"] != "pending":
            return dict(found[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"{as4_message_id} not validated at B after {timeout} s: {found}")
        time.sleep(0.3)


def test_an_invalid_invoice_is_refused_at_submit_with_its_rule_ids(world: SendWorld, vectors: Path) -> None:
    response = requests.post(f"{world.a.url}/api/v1/outbound", timeout=30,
                             data=invoice(vectors / "bis/invalid/invalid-BR-CO-15.xml", X, Y),
                             headers=world.headers(**{"Content-Type": "application/xml"}))
    assert response.status_code == 422, response.text[:500]
    assert [f["rule_id"] for f in response.json()["findings"]] == ["BR-CO-15"]


def test_a_valid_invoice_is_sent_and_the_receiver_stores_a_clean_report(world: SendWorld, vectors: Path) -> None:
    message_id = world.submit(invoice(vectors / "bis/base-example.xml", X, Y))
    body = world.wait_for(message_id)
    assert body["state"] == "sent", body
    assert body["validation"]["status"] == "valid"
    item = b_item(world, body["as4_message_id"])
    assert item["validation"]["status"] == "valid" and item["validation"]["findings"] == []
    assert item["validation"]["release"] == "2026.5"


def test_an_invalid_invoice_from_the_as4_peer_is_receipted_and_shows_its_findings(
        world: SendWorld, vectors: Path, tmp_path: Path) -> None:
    python = ensure_as4_python()
    material, key_pem, cert_pem = world.b.sender("POP000008")
    b_p12 = Path(world.b.env["PEPPOL_AP_KEYSTORE__PKCS12"])  # B's own leaf: the PEM files lie beside it
    ours_key, ours_cert = b_p12.with_name(b_p12.stem + ".key.pem"), b_p12.with_name(b_p12.stem + ".cert.pem")
    parties = Parties(sender_ap=PeerParty("POP000008", material, key_pem, cert_pem),
                      receiver_ap=PeerParty("POP000002", load_pem(ours_key, ours_cert), ours_key, ours_cert),
                      sender=X.value, recipient=Y.value)
    result = peer_send(python, parties, vectors / "bis/invalid/invalid-BR-CO-10.xml", tmp_path / "send",
                       url=world.b.as4_url)
    assert result["response"]["status"] == 200
    assert result["verdict"]["successful"] is True, json.dumps(result["verdict"])  # receipted: transport is fine
    item = b_item(world, result["message_id"])
    validation = item["validation"]
    assert validation["status"] == "invalid"
    assert [(f["rule_id"], f["flag"]) for f in validation["findings"]] == [("BR-CO-10", "fatal"),
                                                                            ("BR-CO-13", "fatal")]
    # lines count in the business document as the inbox serves it (the peer wrapped it in its own SBD)
    auth = {"Authorization": f"Bearer {token_for(world.b, Y)}"}
    document = requests.get(f"{world.b.url}/api/v1/inbound/{item['id']}/document", headers=auth,
                            timeout=30).text.splitlines()
    for finding in validation["findings"]:
        assert "LegalMonetaryTotal" in finding["location"]
        assert "LegalMonetaryTotal" in document[finding["line"] - 1]
