"""The audit log: each admin action writes exactly one record (who, what, when, before/after, no secrets) in the
transaction of its change, a failed action none, and GET /admin/api/audit lists them with filters and cursors."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from accesspoint.app import create_app
from accesspoint.cli.main import cli
from accesspoint.gateway import Gateway
from accesspoint.store.models import (
    ApiClient,
    ApiRole,
    AuditRecord,
    Direction,
    Message,
    MessageState,
    Organisation,
)
from smp.identifiers import ParticipantId
from smp.sml import new_migration_key
from tests.e2e.gateway_process import free_port
from tests.registrations.conftest import RunningSml, make_gateway

ACME = {"name": "Acme AB", "country": "SE", "org_number": "5567321707"}
PARTICIPANT = "0007:5567321707"
PARTICIPANT_URI = "iso6523-actorid-upis::0007:5567321707"


def records(gateway: Gateway) -> list[AuditRecord]:
    with gateway.read() as session:
        found = list(session.scalars(select(AuditRecord).order_by(AuditRecord.id)))
        session.expunge_all()
        return found


def count(gateway: Gateway) -> int:
    with gateway.read() as session:
        return session.scalar(select(func.count()).select_from(AuditRecord)) or 0


def new(gateway: Gateway, before: int) -> list[AuditRecord]:
    return records(gateway)[before:]


def test_organisation_and_participant_actions_write_one_record_each(gateway: Gateway, admin: FlaskClient) -> None:
    created = admin.post("/admin/api/organisations", json=ACME).get_json()
    org_id = created["id"]
    [record] = records(gateway)
    assert (record.action, record.target_type, record.target_id) == ("organisation.create", "organisation",
                                                                    str(org_id))
    assert record.actor == "test admin" and record.api_client_id is not None
    assert record.before is None and record.after["name"] == "Acme AB" and record.after["participants"] == []

    seen = count(gateway)
    assert admin.patch(f"/admin/api/organisations/{org_id}", json={"name": "Acme Group AB"}).status_code == 200
    [update] = new(gateway, seen)
    assert update.action == "organisation.update"
    assert (update.before["name"], update.after["name"]) == ("Acme AB", "Acme Group AB")
    # a PATCH that changes nothing is no change
    assert admin.patch(f"/admin/api/organisations/{org_id}", json={"name": "Acme Group AB"}).status_code == 200
    assert count(gateway) == seen + 1

    seen = count(gateway)
    response = admin.post(f"/admin/api/organisations/{org_id}/participants", json={"identifier": PARTICIPANT})
    assert response.status_code == 201
    participant_id = response.get_json()["id"]
    [create] = new(gateway, seen)
    assert create.action == "participant.create" and create.target_id == str(participant_id)
    assert create.after["identifier"] == PARTICIPANT_URI and create.after["receiving_enabled"] is False

    base = f"/admin/api/participants/{participant_id}"
    order_type = [{"document_type": "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Order-2::"
                                    "Order##urn:fdc:peppol.eu:poacc:trns:order:3::2.1",
                   "process": "cenbii-procid-ubl::urn:fdc:peppol.eu:poacc:bis:ordering:3"}]
    for action, call, check in [
        ("participant.receiving", lambda: admin.post(f"{base}/receiving", json={"enabled": True}),
         lambda r: (r.before["receiving_enabled"], r.after["receiving_enabled"]) == (False, True)),
        ("participant.resync", lambda: admin.post(f"{base}/resync"),
         lambda r: r.after["sml_status"] == "registered"),
        ("participant.document_types", lambda: admin.put(f"{base}/document-types",
                                                         json={"document_types": order_type}),
         lambda r: len(r.before["document_types"]) == 2 and len(r.after["document_types"]) == 1),
        ("participant.receiving", lambda: admin.post(f"{base}/receiving", json={"enabled": False}),
         lambda r: (r.before["receiving_enabled"], r.after["receiving_enabled"]) == (True, False)),
        ("participant.delete", lambda: admin.delete(base),
         lambda r: r.before["identifier"] == PARTICIPANT_URI and r.after is None),
        ("organisation.delete", lambda: admin.delete(f"/admin/api/organisations/{org_id}"),
         lambda r: r.before["name"] == "Acme Group AB" and r.after is None),
    ]:
        seen = count(gateway)
        response = call()
        assert response.status_code in (200, 204), response.get_data(as_text=True)
        [entry] = new(gateway, seen)
        assert entry.action == action and check(entry), (action, entry.before, entry.after)


def test_failed_actions_write_no_record(gateway: Gateway, admin: FlaskClient) -> None:
    org_id = admin.post("/admin/api/organisations", json=ACME).get_json()["id"]
    seen = count(gateway)
    assert admin.post("/admin/api/organisations", json=ACME).status_code == 409  # org_number taken
    assert admin.post("/admin/api/organisations", json={"name": "No country"}).status_code == 422
    assert admin.patch("/admin/api/organisations/999", json={"name": "x"}).status_code == 404
    assert admin.post("/admin/api/participants/999/receiving", json={"enabled": True}).status_code == 404
    assert admin.post("/admin/api/participants/999/resync").status_code == 404
    assert admin.post(f"/admin/api/organisations/{org_id}/participants",
                      json={"identifier": "0007:1234567890"}).status_code == 422  # bad check digit
    assert admin.post("/admin/api/imports?dry_run=true", data=f"org_number,name,country,participant\n"
                      f"5567321707,Acme AB,SE,{PARTICIPANT}\n", content_type="text/csv").status_code == 200
    assert count(gateway) == seen


def test_sml_registration_is_audited(gateway: Gateway, admin: FlaskClient, tmp_path: Path) -> None:
    response = admin.put("/admin/api/sml")
    assert response.status_code == 200
    [record] = records(gateway)
    assert (record.action, record.target_type) == ("sml.register", "sml")
    assert record.before["logical_address"] == record.after["logical_address"] == gateway.smp_url
    # an SML that cannot be reached (the local one `peppol-ap run` would start, not running): nothing recorded
    unreachable = make_gateway(tmp_path / "other", database__url=gateway.config.database_url,
                               local_sml__port=str(free_port()))
    client = create_app(gateway=unreachable).test_client()
    response = client.put("/admin/api/sml", headers={"Authorization": admin.environ_base["HTTP_AUTHORIZATION"]})
    assert response.status_code == 502, response.get_json()
    assert count(gateway) == 1


def test_import_writes_one_record_per_stored_batch(gateway: Gateway, admin: FlaskClient) -> None:
    csv = ("org_number,name,country,participant\n"
           f"5567321707,Acme AB,SE,{PARTICIPANT}\n"
           "5567321707,Acme AB,SE,0088:7300010000001\n")
    report = admin.post("/admin/api/imports", data=csv.encode(), content_type="text/csv").get_json()
    assert report["counts"]["created"] == 2
    [record] = records(gateway)
    assert (record.action, record.target_type) == ("participants.import", "import") and record.target_id
    assert record.after["lines"] == [2, 3] and len(record.after["created_organisations"]) == 1
    assert sorted(record.after["created_participants"]) == sorted(
        [PARTICIPANT_URI, "iso6523-actorid-upis::0088:7300010000001"])


def test_cli_token_create_and_revoke_are_audited_without_the_token(gateway: Gateway) -> None:
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(gateway.config.data_dir),
           "PEPPOL_AP_DATABASE__URL": gateway.config.database_url}
    created = CliRunner(env=env).invoke(cli, ["tokens", "create", "--admin", "--name", "ops laptop"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    with gateway.read() as session:
        client = session.scalar(select(ApiClient).where(ApiClient.name == "ops laptop"))
        token_id, token_hash = client.id, client.token_hash
    revoked = CliRunner(env=env).invoke(cli, ["tokens", "revoke", str(token_id)])
    assert revoked.exit_code == 0, revoked.output
    create, revoke = records(gateway)
    assert create.actor == revoke.actor == f"cli:{getpass.getuser()}" and create.api_client_id is None
    assert (create.action, create.target_id, create.after["name"]) == ("token.create", str(token_id), "ops laptop")
    assert revoke.action == "token.revoke"
    assert revoke.before["revoked_at"] is None and revoke.after["revoked_at"] is not None
    stored = json.dumps([create.before, create.after, revoke.before, revoke.after])
    assert token not in stored and token_hash not in stored
    # revoking again changes nothing and records nothing
    assert CliRunner(env=env).invoke(cli, ["tokens", "revoke", str(token_id)]).exit_code == 0
    assert count(gateway) == 2


def test_retry_of_a_failed_message_is_audited(gateway: Gateway) -> None:
    with gateway.read() as session:
        organisation = Organisation(name="Acme AB", country="SE")
        session.add(organisation)
        session.flush()
        client, token = ApiClient.issue("acme erp", ApiRole.NETWORK, organisation.id)
        session.add(client)
        failed = Message(direction=Direction.OUTBOUND, organisation_id=organisation.id, state=MessageState.FAILED,
                         error_code="PERMANENT", attempts=3, blob_key="kept")
        sent = Message(direction=Direction.OUTBOUND, organisation_id=organisation.id, state=MessageState.SENT)
        session.add_all([failed, sent])
        session.flush()
        failed_id, sent_id = failed.id, sent.id
    api = create_app(gateway=gateway).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert api.post(f"/api/v1/outbound/{sent_id}/retry", headers=auth).status_code == 409
    assert count(gateway) == 0
    assert api.post(f"/api/v1/outbound/{failed_id}/retry", headers=auth).status_code == 202
    [record] = records(gateway)
    assert (record.action, record.target_type, record.target_id, record.actor) == (
        "message.retry", "message", failed_id, "acme erp")
    assert (record.before["state"], record.after["state"]) == ("failed", "queued")
    assert record.before["error_code"] == "PERMANENT" and record.after["error_code"] is None


def test_audit_api_filters_and_pages(gateway: Gateway, admin: FlaskClient) -> None:
    first = admin.post("/admin/api/organisations", json=ACME).get_json()["id"]
    second = admin.post("/admin/api/organisations", json={**ACME, "org_number": "5560000001"}).get_json()["id"]
    admin.patch(f"/admin/api/organisations/{first}", json={"name": "Acme Group AB"})
    admin.delete(f"/admin/api/organisations/{second}")

    def walk(query: str) -> list[dict]:  # type: ignore[type-arg]
        items, url = [], f"/admin/api/audit?{query}"
        for _ in range(10):
            page = admin.get(url).get_json()
            items += page["items"]
            url = page["next"]
            if url is None:
                return items
        raise AssertionError("cursor did not end")

    everything = walk("limit=100")
    assert [i["action"] for i in everything] == ["organisation.delete", "organisation.update",
                                                "organisation.create", "organisation.create"]
    assert walk("limit=1") == everything
    assert walk("limit=3&order=oldest") == everything[::-1]
    assert [i["target_id"] for i in walk("action=organisation.create&order=oldest")] == [str(first), str(second)]
    assert [i["action"] for i in walk(f"target=organisation:{first}")] == ["organisation.update",
                                                                          "organisation.create"]
    assert len(walk("target=organisation")) == 4 and walk("target=participant") == []
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert walk(f"since={later.replace('+', '%2B')}") == []
    assert walk(f"until={later.replace('+', '%2B')}") == everything
    assert everything[0]["actor"] == "test admin" and "created_at" in everything[0]
    assert admin.get("/admin/api/audit?order=sideways").status_code == 400
    assert admin.get("/admin/api/audit?until=yesterday").status_code == 400
    with gateway.read() as session:
        network, token = ApiClient.issue("erp", ApiRole.NETWORK, first)
        session.add(network)
    plain = create_app(gateway=gateway).test_client()
    assert plain.get("/admin/api/audit", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_migration_is_audited_without_the_key(gateway: Gateway, admin: FlaskClient, local_sml: RunningSml) -> None:
    other = local_sml.other_provider()
    other.create_participant(ParticipantId.parse(PARTICIPANT))
    key = new_migration_key()
    other.prepare_to_migrate(ParticipantId.parse(PARTICIPANT), key)
    org_id = admin.post("/admin/api/organisations", json=ACME).get_json()["id"]
    participant_id = admin.post(f"/admin/api/organisations/{org_id}/participants",
                                json={"identifier": PARTICIPANT}).get_json()["id"]
    seen = count(gateway)
    response = admin.post(f"/admin/api/participants/{participant_id}/migrate", json={"key": key})
    assert response.status_code == 200 and response.get_json()["sml"]["status"] == "registered"
    [record] = new(gateway, seen)
    assert record.action == "participant.migrate" and record.target_id == str(participant_id)
    assert (record.before["receiving_enabled"], record.after["receiving_enabled"]) == (False, True)
    assert key not in json.dumps([record.before, record.after])


def test_the_validation_mode_is_set_by_patch_and_audited(gateway: Gateway, admin: FlaskClient) -> None:
    org_id = admin.post("/admin/api/organisations", json=ACME).get_json()["id"]
    assert admin.get(f"/admin/api/organisations/{org_id}").get_json()["validation_mode"] == "refuse"
    refused = admin.patch(f"/admin/api/organisations/{org_id}", json={"validation_mode": "off"})
    assert refused.status_code == 422 and "validation_mode" in refused.get_data(as_text=True)
    seen = count(gateway)
    response = admin.patch(f"/admin/api/organisations/{org_id}", json={"validation_mode": "warn"})
    assert response.status_code == 200 and response.get_json()["validation_mode"] == "warn"
    [update] = new(gateway, seen)
    assert update.action == "organisation.update"
    assert (update.before["validation_mode"], update.after["validation_mode"]) == ("refuse", "warn")
