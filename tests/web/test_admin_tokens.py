"""Tokens through the admin API: made with a name, scopes and an optional expiry, shown once, listed without the
token or its hash, revoked; scopes and expiry enforced on every route; each change audited without the token; only
the `admin` scope manages tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from accesspoint.gateway import Gateway
from accesspoint.store.models import ApiClient, ApiRole, AuditRecord
from accesspoint.store.scopes import NETWORK_SCOPES, Scope
from accesspoint.store.tokens import hash_token
from tests.web.conftest import Org

TOKENS = "/admin/api/tokens"


def issue(gateway: Gateway, role: ApiRole, organisation_id: int | None = None, *, scopes: list[Scope] | None = None,
          expires_at: datetime | None = None, name: str = "test token") -> str:
    with gateway.read() as session:
        client, token = ApiClient.issue(name, role, organisation_id, scopes=scopes, expires_at=expires_at)
        session.add(client)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(client: FlaskClient, admin: str, **body: Any) -> Any:
    return client.post(TOKENS, json=body, headers=bearer(admin))


def test_create_use_list_revoke(gateway: Gateway, client: FlaskClient, acme: Org) -> None:
    admin = issue(gateway, ApiRole.ADMIN, name="ops")
    expires = (datetime.now(UTC) + timedelta(days=90)).replace(microsecond=0)
    made = create(client, admin, name="acme reader", role="network", organisation_id=acme.id,
                  scopes=["outbound:read", "inbound:read"], expires_at=expires.isoformat())
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    token = body["token"]
    assert token.startswith("pap_") and body["token_prefix"] == token[:8]
    assert body["scopes"] == ["outbound:read", "inbound:read"] and body["state"] == "active"
    assert datetime.fromisoformat(body["expires_at"]) == expires
    assert made.headers["Cache-Control"] == "no-store"
    assert made.headers["Location"] == f"{TOKENS}/{body['id']}"

    assert client.get("/api/v1/outbound", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/inbound", headers=bearer(token)).status_code == 200

    listed = client.get(TOKENS, headers=bearer(admin))
    assert listed.status_code == 200
    page = listed.get_json()
    assert page["next"] is None
    mine = next(item for item in page["items"] if item["id"] == body["id"])
    assert mine["last_used_at"] is not None and mine["organisation_id"] == acme.id
    text = listed.get_data(as_text=True)
    assert token not in text and hash_token(token) not in text and "token_hash" not in text
    assert "token" not in mine
    one = client.get(f"{TOKENS}/{body['id']}", headers=bearer(admin)).get_json()
    assert one == mine

    assert client.delete(f"{TOKENS}/{body['id']}", headers=bearer(admin)).status_code == 204
    refused = client.get("/api/v1/outbound", headers=bearer(token))
    assert refused.status_code == 401 and "revoked" in refused.get_json()["detail"]
    assert client.get(f"{TOKENS}/{body['id']}", headers=bearer(admin)).get_json()["state"] == "revoked"
    # revoking again is no change; an unknown token is a 404
    assert client.delete(f"{TOKENS}/{body['id']}", headers=bearer(admin)).status_code == 204
    assert client.delete(f"{TOKENS}/999999", headers=bearer(admin)).status_code == 404


def test_a_token_without_scopes_gets_the_full_set_of_its_role(gateway: Gateway, client: FlaskClient,
                                                               acme: Org) -> None:
    admin = issue(gateway, ApiRole.ADMIN)
    network = create(client, admin, name="erp", role="network", organisation_id=acme.id).get_json()
    assert network["scopes"] == [str(s) for s in NETWORK_SCOPES] and network["expires_at"] is None
    assert create(client, admin, name="ops", role="admin").get_json()["scopes"] == ["admin"]


def test_an_expired_token_is_refused_with_the_reason(gateway: Gateway, client: FlaskClient, acme: Org) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    token = issue(gateway, ApiRole.NETWORK, acme.id, expires_at=past, name="old erp")
    answer = client.get("/api/v1/outbound", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"
    assert "expired at" in answer.get_json()["detail"] and "old erp" in answer.get_json()["detail"]
    assert "invalid_token" in answer.headers["WWW-Authenticate"]
    admin = issue(gateway, ApiRole.ADMIN, expires_at=past)
    assert client.get(TOKENS, headers=bearer(admin)).status_code == 401
    # a token that expires later works, and an expiry in the past cannot be given
    fresh = issue(gateway, ApiRole.NETWORK, acme.id, expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert client.get("/api/v1/outbound", headers=bearer(fresh)).status_code == 200
    live_admin = issue(gateway, ApiRole.ADMIN)
    refused = create(client, live_admin, name="x", role="network", organisation_id=acme.id,
                     expires_at=past.isoformat())
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "expires_at"
    states = {i["name"]: i["state"] for i in client.get(TOKENS, headers=bearer(live_admin)).get_json()["items"]}
    assert states["old erp"] == "expired" and states["Acme AB erp"] == "active"


def test_a_missing_scope_is_403_naming_it(gateway: Gateway, client: FlaskClient, acme: Org) -> None:
    reader = issue(gateway, ApiRole.NETWORK, acme.id, scopes=[Scope.OUTBOUND_READ])
    submit = client.post("/api/v1/outbound", data=b"<Invoice/>", content_type="application/xml",
                         headers=bearer(reader))
    assert submit.status_code == 403
    assert submit.get_json()["scope"] == "outbound:write" and "outbound:write" in submit.get_json()["detail"]
    for method, path, scope in (("get", "/api/v1/inbound", "inbound:read"), ("get", "/api/v1/events", "events:read"),
                                ("get", "/api/v1/webhooks", "webhooks"),
                                ("post", "/api/v1/inbound/x/ack", "inbound:ack")):
        answer = getattr(client, method)(path, headers=bearer(reader))
        assert (answer.status_code, answer.get_json()["scope"]) == (403, scope), path
    assert client.get("/api/v1/outbound", headers=bearer(reader)).status_code == 200


def test_only_the_admin_scope_manages_tokens(gateway: Gateway, client: FlaskClient, acme: Org) -> None:
    network = issue(gateway, ApiRole.NETWORK, acme.id)
    support = issue(gateway, ApiRole.ADMIN, scopes=[Scope.SUPPORT])
    body = {"name": "sneaky", "role": "admin"}
    assert client.post(TOKENS, json=body, headers=bearer(network)).status_code == 403
    refused = client.post(TOKENS, json=body, headers=bearer(support))
    assert refused.status_code == 403 and refused.get_json()["scope"] == "admin"
    # support reads everything (tokens and the audit log included) but changes nothing but registrations
    assert client.get(TOKENS, headers=bearer(support)).status_code == 200
    assert client.get("/admin/api/organisations", headers=bearer(support)).status_code == 200
    assert client.get("/admin/api/audit", headers=bearer(support)).status_code == 200
    assert client.post("/admin/api/organisations", json={"name": "X", "country": "SE"},
                       headers=bearer(support)).status_code == 403
    assert client.delete(f"/admin/api/organisations/{acme.id}", headers=bearer(support)).status_code == 403
    # resync is a support action: it passes the scope check and reaches the route (no such participant here)
    assert client.post("/admin/api/participants/999/resync", headers=bearer(support)).status_code == 404
    with gateway.read() as session:
        assert session.scalar(select(ApiClient).where(ApiClient.name == "sneaky")) is None
        target = session.scalar(select(ApiClient.id).where(ApiClient.role == ApiRole.NETWORK))
    assert client.delete(f"{TOKENS}/{target}", headers=bearer(support)).status_code == 403
    assert client.get("/api/v1/outbound", headers=bearer(network)).status_code == 200


def test_changes_are_audited_without_the_token(gateway: Gateway, client: FlaskClient, acme: Org) -> None:
    admin = issue(gateway, ApiRole.ADMIN, name="ops")
    made = create(client, admin, name="acme erp", role="network", organisation_id=acme.id,
                  scopes=["outbound:write"]).get_json()
    client.delete(f"{TOKENS}/{made['id']}", headers=bearer(admin))
    log = client.get("/admin/api/audit?target=token", headers=bearer(admin)).get_json()["items"]
    assert [(e["action"], e["target_id"], e["actor"]) for e in log] == [
        ("token.revoke", str(made["id"]), "ops"), ("token.create", str(made["id"]), "ops")]
    revoke, create_entry = log
    assert create_entry["after"]["scopes"] == ["outbound:write"] and create_entry["after"]["name"] == "acme erp"
    assert revoke["before"]["revoked_at"] is None and revoke["after"]["revoked_at"] is not None
    with gateway.read() as session:
        stored = json.dumps([[r.before, r.after] for r in session.scalars(select(AuditRecord))])
    assert made["token"] not in stored and hash_token(made["token"]) not in stored


def test_invalid_requests_name_the_field(gateway: Gateway, client: FlaskClient, acme: Org) -> None:
    admin = issue(gateway, ApiRole.ADMIN)
    cases = [
        ({"name": "x", "role": "network", "organisation_id": acme.id, "scopes": ["outbound:delete"]}, "scopes[0]"),
        ({"name": "x", "role": "admin", "scopes": ["outbound:read"]}, "scopes"),
        ({"name": "x", "role": "network", "organisation_id": acme.id, "scopes": []}, "scopes"),
        ({"name": "x", "role": "network"}, "organisation_id"),
        ({"name": "x", "role": "admin", "organisation_id": acme.id}, "organisation_id"),
        ({"name": "x", "role": "network", "organisation_id": 999999}, "organisation_id"),
        ({"name": " ", "role": "admin"}, "name"),
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "x", "role": "admin", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        # no UTC form, which the database keeps (it was a 500)
        ({"name": "x", "role": "admin", "expires_at": "9999-12-31T23:00:00-05:00"}, "expires_at"),
        ({"name": "x", "role": "admin", "token": "pap_mine"}, "token"),
    ]
    for body, field in cases:
        answer = create(client, admin, **body)
        assert answer.status_code == 422, (body, answer.get_json())
        assert field in [e["field"] for e in answer.get_json()["errors"]], (body, answer.get_json())
    assert client.post(TOKENS, data="name=x", headers=bearer(admin)).status_code == 415
    assert client.post(TOKENS, data="[1]", content_type="application/json", headers=bearer(admin)).status_code == 422
    with gateway.read() as session:
        assert len(list(session.scalars(select(ApiClient)))) == 2  # acme's and the admin's


def test_the_list_pages_with_a_cursor(gateway: Gateway, client: FlaskClient, acme: Org) -> None:
    admin = issue(gateway, ApiRole.ADMIN)
    for n in range(3):
        create(client, admin, name=f"erp {n}", role="network", organisation_id=acme.id)
    first = client.get(f"{TOKENS}?limit=2", headers=bearer(admin))
    assert len(first.get_json()["items"]) == 2 and first.get_json()["next"]
    assert first.headers["Link"].endswith('; rel="next"')
    names, answer = [], first
    while True:
        names += [i["name"] for i in answer.get_json()["items"]]
        if answer.get_json()["next"] is None:
            assert "Link" not in answer.headers
            break
        # the Link header keeps the other parameters (limit) and adds the cursor
        answer = client.get(answer.headers["Link"].split(">")[0].lstrip("<"), headers=bearer(admin))
        assert len(answer.get_json()["items"]) <= 2
    assert names == ["Acme AB erp", "test token", "erp 0", "erp 1", "erp 2"]
    only_acme = client.get(f"{TOKENS}?organisation_id={acme.id}", headers=bearer(admin)).get_json()["items"]
    assert [i["name"] for i in only_acme] == ["Acme AB erp", "erp 0", "erp 1", "erp 2"]


def test_the_admin_document_describes_the_token_routes(client: FlaskClient) -> None:
    document = client.get("/admin/api/openapi.json").get_json()
    paths = document["paths"]
    assert set(paths["/admin/api/tokens"]) == {"get", "post"}
    assert set(paths["/admin/api/tokens/{token_id}"]) == {"get", "delete"}
    create_op = paths["/admin/api/tokens"]["post"]
    assert {"201", "400", "401", "403", "413", "415", "422"} <= set(create_op["responses"])
    schemas = document["components"]["schemas"]
    assert set(schemas["Scope"]["enum"]) == {str(s) for s in Scope}
    assert "token" in schemas["TokenCreated"]["properties"] and "token" not in schemas["Token"]["properties"]
    assert schemas["TokenRequest"]["examples"]
