"""The inbox API: authentication and organisation scoping, listing with filters and cursors, the business
document extracted from the stored SBD, the SBD itself, the receipt, and idempotent acks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select

from accesspoint.cli.main import cli
from accesspoint.gateway import Gateway
from accesspoint.store.models import ApiClient, ApiRole, Event, Message, MessageState
from tests.web.conftest import START, Org, StoreInbound, bis_documents

PROBLEM = "application/problem+json"


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"]
    return body


def _root_element_bytes(document: bytes) -> bytes:
    """The document from its root start tag to its root end tag: what the envelope carries of it."""
    return document[_first_element(document):document.rindex(b">") + 1]


def _first_element(document: bytes) -> int:
    position = 0
    while True:
        position = document.index(b"<", position)
        if document[position + 1:position + 2] not in (b"?", b"!"):
            return position
        position = document.index(b">", position) + 1


# --- authentication and scoping ---------------------------------------------------------------------

def test_tokens_are_required_and_scoped(gateway: Gateway, client: FlaskClient, acme: Org, globex: Org,
                                        store_inbound: StoreInbound) -> None:
    mine = store_inbound(acme)
    theirs = store_inbound(globex)
    body = _problem(client.get("/api/v1/inbound"), 401)
    assert "Bearer" in body["detail"]
    _problem(client.get("/api/v1/inbound", headers={"Authorization": "Bearer pap_unknown"}), 401)

    with gateway.read() as session:
        admin, admin_token = ApiClient.issue("ops", ApiRole.ADMIN)
        session.add(admin)
    _problem(client.get("/api/v1/inbound", headers={"Authorization": f"Bearer {admin_token}"}), 403)

    # another organisation's message does not exist for this token, on every route
    for path in ("", "/document", "/document?format=sbd", "/receipt"):
        body = _problem(client.get(f"/api/v1/inbound/{theirs.id}{path}", headers=acme.auth), 404)
        assert theirs.id in body["detail"]
    _problem(client.post(f"/api/v1/inbound/{theirs.id}/ack", headers=acme.auth), 404)
    listed = client.get("/api/v1/inbound", headers=acme.auth).get_json()["items"]
    assert [item["id"] for item in listed] == [mine.id]


def test_a_revoked_token_is_refused(gateway: Gateway, client: FlaskClient, acme: Org, tmp_path: Path) -> None:
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(gateway.config.data_dir),
           "PEPPOL_AP_DATABASE__URL": gateway.config.database_url}
    created = CliRunner(env=env).invoke(cli, ["tokens", "create", "--org", str(acme.id), "--name", "revoke me"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/inbound", headers=headers).status_code == 200
    with gateway.sessions() as session:
        token_id = session.scalar(select(ApiClient.id).where(ApiClient.name == "revoke me"))
    assert CliRunner(env=env).invoke(cli, ["tokens", "revoke", str(token_id)]).exit_code == 0
    body = _problem(client.get("/api/v1/inbound", headers=headers), 401)
    assert "revoked" in body["detail"]


# --- listing ------------------------------------------------------------------------------------------

def test_metadata_of_a_message(client: FlaskClient, acme: Org, store_inbound: StoreInbound) -> None:
    stored = store_inbound(acme)
    item = client.get(f"/api/v1/inbound/{stored.id}", headers=acme.auth).get_json()
    assert item["state"] == "new" and item["acked_at"] is None
    assert item["sender"] == "iso6523-actorid-upis::0088:9482348239847239874"
    assert item["receiver"] == "iso6523-actorid-upis::0002:FR23342"
    assert item["document_type"].endswith("::2.1") and item["process"].startswith("cenbii-procid-ubl::")
    assert item["country_c1"] == "GB" and item["sending_ap"] == {"seat_id": "POP000002", "endpoint_url": None}
    assert item["sbd_size"] == len(stored.sbd)
    assert item["sbd_sha256"] == hashlib.sha256(stored.sbd).hexdigest()
    assert item["document_size"] == len(stored.document)
    assert datetime.fromisoformat(item["received_at"]) == START
    assert item["receipt"]["sha256"] == hashlib.sha256(stored.receipt).hexdigest()
    assert item["receipt"]["url"] == f"/api/v1/inbound/{stored.id}/receipt"
    assert item["links"]["sbd"] == f"/api/v1/inbound/{stored.id}/document?format=sbd"


def test_filters_order_and_cursor_pagination(client: FlaskClient, acme: Org, store_inbound: StoreInbound) -> None:
    stored = [store_inbound(acme, state=MessageState.ACKED if n == 2 else MessageState.NEW) for n in range(6)]
    ids = [s.id for s in stored]

    def walk(query: str) -> list[str]:
        seen, url, pages = [], f"/api/v1/inbound?{query}", 0
        while True:
            response = client.get(url, headers=acme.auth)
            page = response.get_json()
            seen += [item["id"] for item in page["items"]]
            pages += 1
            url = page["next"]
            if url is None:
                assert "Link" not in response.headers
                return seen
            assert response.headers["Link"] == f'<{url}>; rel="next"'
            assert pages < 10

    assert walk("limit=4") == ids
    assert walk("limit=2") == ids
    assert walk("limit=2&order=newest") == ids[::-1]
    assert walk("limit=1&state=new") == [i for n, i in enumerate(ids) if n != 2]
    assert walk("state=acked") == [ids[2]]
    since = (START + timedelta(minutes=3)).isoformat()
    assert walk(f"limit=2&since={since.replace('+00:00', 'Z')}") == ids[3:]
    assert walk("since=2026-11-21T10:04:00%2B01:00") == ids[4:]


def test_filters_an_integrator_needs(client: FlaskClient, acme: Org, globex: Org, store_inbound: StoreInbound,
                                     vectors: Path) -> None:
    invoice = store_inbound(acme, (vectors / "bis" / "Norwegian-example-1.xml").read_bytes())
    credit_note = store_inbound(acme, (vectors / "bis" / "base-creditnote-correction.xml").read_bytes())
    store_inbound(globex, (vectors / "bis" / "Norwegian-example-1.xml").read_bytes())
    one = client.get(f"/api/v1/inbound/{invoice.id}", headers=acme.auth).get_json()
    assert one["document_id"] == "TOSL108"

    def ids(**query: str) -> list[str]:
        response = client.get("/api/v1/inbound", headers=acme.auth, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [item["id"] for item in response.get_json()["items"]]

    assert ids(document_id="TOSL108") == [invoice.id]  # not globex's message with the same number
    assert ids(document_id="nothing") == []
    assert ids(sender=one["sender"]) == [invoice.id]
    assert ids(sender=one["sender"].removeprefix("iso6523-actorid-upis::")) == [invoice.id]  # ICD:id form
    receiver = client.get(f"/api/v1/inbound/{credit_note.id}", headers=acme.auth).get_json()["receiver"]
    assert receiver != receiver.lower() and ids(receiver=receiver.lower()) == [credit_note.id]  # without case
    assert ids(receiver=one["receiver"]) == [invoice.id]
    assert ids(document_type=one["document_type"]) == [invoice.id]
    assert ids(until=(START + timedelta(minutes=1)).isoformat()) == [invoice.id]
    assert ids(since=(START + timedelta(minutes=1)).isoformat()) == [credit_note.id]
    body = _problem(client.get("/api/v1/inbound?sender=nonsense", headers=acme.auth), 400)
    assert body["parameter"] == "sender" and body["errors"][0]["field"] == "sender"


def test_bad_list_parameters_are_named(client: FlaskClient, acme: Org, store_inbound: StoreInbound) -> None:
    for _ in range(3):
        store_inbound(acme)
    cases = {
        "state=done": "state", "order=random": "order", "limit=0": "limit", "limit=501": "limit", "limit=x": "limit",
        "since=yesterday": "since", "since=2026-11-21T10:00:00": "since", "cursor=nonsense": "cursor",
        "cursor=W10": "cursor",
    }
    for query, parameter in cases.items():
        body = _problem(client.get(f"/api/v1/inbound?{query}", headers=acme.auth), 400)
        assert body["parameter"] == parameter, query
    oldest_next = client.get("/api/v1/inbound?limit=1", headers=acme.auth).get_json()["next"]
    body = _problem(client.get(f"{oldest_next}&order=newest", headers=acme.auth), 400)
    assert "oldest" in body["detail"]


# --- documents, receipt, ack --------------------------------------------------------------------------

def test_business_document_equals_the_original_for_every_bis_example(
        client: FlaskClient, acme: Org, store_inbound: StoreInbound, vectors: Path) -> None:
    for path in bis_documents(vectors):
        original = path.read_bytes()
        stored = store_inbound(acme, original)
        response = client.get(f"/api/v1/inbound/{stored.id}/document", headers=acme.auth)
        assert response.status_code == 200, path.name
        assert response.mimetype == "application/xml"
        body = response.get_data()
        # the root element byte for byte; the envelope dropped the document's own XML declaration
        assert body == b'<?xml version="1.0" encoding="UTF-8"?>\n' + _root_element_bytes(original), path.name
        assert int(response.headers["Content-Length"]) == len(body)
        assert etree.fromstring(body).tag == etree.fromstring(original).tag


def test_sbd_format_is_the_stored_envelope(client: FlaskClient, acme: Org, store_inbound: StoreInbound) -> None:
    stored = store_inbound(acme)
    response = client.get(f"/api/v1/inbound/{stored.id}/document?format=sbd", headers=acme.auth)
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert response.get_data() == stored.sbd
    assert response.headers["ETag"] == f'"{hashlib.sha256(stored.sbd).hexdigest()}"'
    body = _problem(client.get(f"/api/v1/inbound/{stored.id}/document?format=pdf", headers=acme.auth), 400)
    assert body["parameter"] == "format"


def test_receipt_bytes(client: FlaskClient, acme: Org, store_inbound: StoreInbound) -> None:
    stored = store_inbound(acme)
    response = client.get(f"/api/v1/inbound/{stored.id}/receipt", headers=acme.auth)
    assert response.status_code == 200 and response.mimetype == "application/soap+xml"
    assert response.get_data() == stored.receipt
    without = store_inbound(acme, receipt=False)
    assert client.get(f"/api/v1/inbound/{without.id}", headers=acme.auth).get_json()["receipt"] is None
    body = _problem(client.get(f"/api/v1/inbound/{without.id}/receipt", headers=acme.auth), 404)
    assert "receipt" in body["detail"]


def test_ack_is_idempotent_and_leaves_the_new_list(gateway: Gateway, client: FlaskClient, acme: Org,
                                                   store_inbound: StoreInbound) -> None:
    stored = store_inbound(acme)
    other = store_inbound(acme)
    first = client.post(f"/api/v1/inbound/{stored.id}/ack", headers=acme.auth)
    assert first.status_code == 200
    acked = first.get_json()
    assert acked["state"] == "acked"
    assert datetime.fromisoformat(acked["acked_at"]) <= datetime.now(UTC)
    again = client.post(f"/api/v1/inbound/{stored.id}/ack", headers=acme.auth).get_json()
    assert again == acked
    waiting = client.get("/api/v1/inbound?state=new", headers=acme.auth).get_json()["items"]
    assert [item["id"] for item in waiting] == [other.id]
    with gateway.sessions() as session:
        events = session.scalars(select(Event.type).where(Event.message_id == stored.id)
                                 .order_by(Event.created_at)).all()
    assert events == ["inbound.received", "inbound.acked"]


def test_a_missing_stored_document_is_a_problem_not_a_crash(gateway: Gateway, client: FlaskClient, acme: Org,
                                                              store_inbound: StoreInbound) -> None:
    stored = store_inbound(acme)
    with gateway.sessions() as session:
        key = session.get(Message, stored.id).blob_key  # type: ignore[union-attr]
    gateway.blobs.delete(key)
    body = _problem(client.get(f"/api/v1/inbound/{stored.id}/document", headers=acme.auth), 500)
    assert "missing" in body["detail"]
