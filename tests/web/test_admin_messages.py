"""`/admin/api/messages`: support finds a message of any organisation by the filters of the network API's lists,
plus organisation and direction."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from accesspoint.gateway import Gateway
from accesspoint.store.models import ApiClient, ApiRole
from tests.web.conftest import Org, StoreInbound


def _admin(gateway: Gateway) -> dict[str, str]:
    with gateway.read() as session:
        client, token = ApiClient.issue("support", ApiRole.ADMIN)
        session.add(client)
    return {"Authorization": f"Bearer {token}"}


def test_support_finds_a_message_of_any_organisation(gateway: Gateway, client: FlaskClient, acme: Org, globex: Org,
                                                     store_inbound: StoreInbound, vectors: Path) -> None:
    admin = _admin(gateway)
    norwegian = (vectors / "bis" / "Norwegian-example-1.xml").read_bytes()
    ours, theirs = store_inbound(acme, norwegian), store_inbound(globex, norwegian)
    other = store_inbound(globex)

    def ids(**query: str | int) -> list[str]:
        response = client.get("/admin/api/messages", headers=admin, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [item["id"] for item in response.get_json()["items"]]

    assert ids() == [other.id, theirs.id, ours.id]  # newest first
    assert ids(document_id="TOSL108") == [theirs.id, ours.id]
    assert ids(document_id="TOSL108", organisation=acme.id) == [ours.id]
    assert ids(direction="outbound") == [] and ids(direction="inbound", order="oldest") == [ours.id, theirs.id,
                                                                                            other.id]
    assert ids(state="acked") == []
    first = client.get("/admin/api/messages?limit=1", headers=admin)
    assert first.headers["Link"] == f'<{first.get_json()["next"]}>; rel="next"'
    assert client.get(first.get_json()["next"], headers=admin).get_json()["items"][0]["id"] == theirs.id

    one = client.get(f"/admin/api/messages/{ours.id}", headers=admin).get_json()
    assert (one["organisation_id"], one["direction"], one["document_id"]) == (acme.id, "inbound", "TOSL108")
    assert one["peer_ap"] == {"seat_id": "POP000002", "endpoint_url": None}
    assert client.get("/admin/api/messages/nope", headers=admin).status_code == 404
    bad = client.get("/admin/api/messages?organisation=zero", headers=admin)
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "organisation"
    assert client.get("/admin/api/messages", headers=acme.auth).status_code == 403
