"""The admin API over the Flask test client, with the local SML and the Directory capture server behind it."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from accesspoint.app import create_app
from accesspoint.gateway import Gateway
from accesspoint.store.models import (
    BIS_BILLING_CREDIT_NOTE,
    BIS_BILLING_INVOICE,
    BIS_BILLING_PROCESS,
    ApiClient,
    ApiRole,
)
from smp.identifiers import ParticipantId
from smp.sml import new_migration_key
from tests.registrations.conftest import RunningSml
from tests.smp.registry_support import CaptureServer

ACME = {"name": "Acme AB", "country": "se", "org_number": "5567321707", "vat_number": "SE556732170701",
        "contact_email": "peppol@acme.example"}
ACME_ID = ParticipantId.parse("0007:5567321707")
ORDER = ("busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Order-2::Order"
         "##urn:fdc:peppol.eu:poacc:trns:order:3::2.1")
ORDERING = "cenbii-procid-ubl::urn:fdc:peppol.eu:poacc:bis:ordering:3"


def create(admin: FlaskClient, **extra: object) -> dict:
    response = admin.post("/admin/api/organisations", json={**ACME, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_admin_token_required(gateway: Gateway) -> None:
    client = create_app(gateway=gateway).test_client()
    assert client.get("/admin/api/organisations").status_code == 401
    with gateway.read() as session:
        network, token = ApiClient.issue("erp", ApiRole.NETWORK)
        session.add(network)
    response = client.get("/admin/api/organisations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.mimetype == "application/problem+json"


def test_register_an_organisation_in_one_call(admin: FlaskClient, local_sml: RunningSml, our_smp_id: str,
                                              directory: CaptureServer) -> None:
    body = create(admin, participants=[{"identifier": "0007:5567321707", "receiving": True},
                                       {"identifier": "0088:7300010000001"}])
    assert body["country"] == "SE" and body["name"] == "Acme AB"
    receiving, idle = body["participants"]
    assert receiving["identifier"] == ACME_ID.uri
    assert receiving["registration"]["sml"] == {"status": "registered", "error": None}
    assert receiving["registration"]["directory"]["status"] == "registered"
    assert {(d["document_type"], d["process"]) for d in receiving["document_types"]} == {
        (BIS_BILLING_INVOICE, BIS_BILLING_PROCESS), (BIS_BILLING_CREDIT_NOTE, BIS_BILLING_PROCESS)}
    assert idle["receiving_enabled"] is False and idle["registration"]["sml"]["status"] == "unregistered"
    assert local_sml.registered(our_smp_id) == {ACME_ID}
    assert admin.get(f"/smp/{quote(ACME_ID.uri, safe='')}").status_code == 200

    listing = admin.get("/admin/api/organisations?org_number=5567321707").get_json()
    assert [o["id"] for o in listing["items"]] == [body["id"]] and listing["next"] is None
    found = admin.get("/admin/api/participants?identifier=0007:5567321707").get_json()["items"]
    assert [p["id"] for p in found] == [receiving["id"]]


@pytest.mark.parametrize(("payload", "field", "words"), [
    ({"name": "X", "country": "SE", "participants": [{"identifier": "0007:5567321708"}]},
     "participants[0].identifier", "check digit"),
    ({"name": "X", "country": "SE", "participants": [{"identifier": "9999:123"}]},
     "participants[0].identifier", "not in the Peppol participant identifier scheme code list"),
    ({"name": "X", "country": "Sweden"}, "country", "two-letter"),
    ({"country": "SE"}, "name", "is required"),
    ({"name": "X", "country": "SE", "contact_email": "nobody"}, "contact_email", "not an email address"),
    ({"name": "X", "country": "SE", "colour": "red"}, "colour", "not a known field"),
    ({"name": "X", "country": "SE", "participants": [{"identifier": "0007:5567321707", "receiving": "yes"}]},
     "participants[0].receiving", "true or false"),
    ({"name": "X", "country": "SE", "participants": [{"identifier": "0007:5567321707",
                                                       "document_types": [{"document_type": "x", "process": "p"}]}]},
     "participants[0].document_types[0].document_type", "'##'"),
])
def test_invalid_fields_are_422_naming_the_field(admin: FlaskClient, payload: dict, field: str, words: str) -> None:
    response = admin.post("/admin/api/organisations", json=payload)
    assert response.status_code == 422
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert any(e["field"] == field and words in e["message"] for e in problem["errors"]), problem
    assert field in problem["detail"]


def test_duplicates_are_conflicts(admin: FlaskClient) -> None:
    body = create(admin, participants=[{"identifier": "0007:5567321707"}])
    again = admin.post("/admin/api/organisations", json=ACME)
    assert again.status_code == 409 and "org_number" in again.get_json()["detail"]
    other = admin.post("/admin/api/organisations", json={"name": "Other AB", "country": "SE",
                                                         "participants": [{"identifier": "0007:5567321707"}]})
    assert other.status_code == 409
    assert f"organisation {body['id']} (Acme AB)" in other.get_json()["detail"]
    second = admin.post(f"/admin/api/organisations/{body['id']}/participants", json={"identifier": "0007:5567321707"})
    assert second.status_code == 409


def test_participant_lifecycle(admin: FlaskClient, local_sml: RunningSml, our_smp_id: str,
                               directory: CaptureServer) -> None:
    organisation = create(admin)
    response = admin.post(f"/admin/api/organisations/{organisation['id']}/participants",
                          json={"identifier": "iso6523-actorid-upis::0007:5567321707"})
    assert response.status_code == 201
    participant = response.get_json()
    assert response.headers["Location"].endswith(f"/admin/api/participants/{participant['id']}")
    base = f"/admin/api/participants/{participant['id']}"

    state = admin.post(f"{base}/receiving", json={"enabled": True}).get_json()
    assert state["sml"]["status"] == "registered" and state["receiving_enabled"] is True
    assert admin.get(f"{base}/registration").get_json() == state
    assert admin.post(f"{base}/resync").get_json()["sml"]["status"] == "registered"

    # document types: what the SMP publishes follows at once, and the Directory hears about it
    put = admin.put(f"{base}/document-types", json={"document_types": [{"document_type": ORDER, "process": ORDERING}]})
    assert put.status_code == 200 and put.get_json()["document_types"] == [{"document_type": ORDER,
                                                                            "process": ORDERING}]
    smp = f"/smp/{quote(ACME_ID.uri, safe='')}/services/"
    assert admin.get(smp + quote(ORDER, safe="")).status_code == 200
    assert admin.get(smp + quote(BIS_BILLING_INVOICE, safe="")).status_code == 404
    # enable, resync, document types
    assert [r.method for r in directory.requests] == ["PUT", "PUT", "PUT"]

    # an organisation change re-publishes the card
    patched = admin.patch(f"/admin/api/organisations/{organisation['id']}", json={"name": "Acme Group AB"})
    assert patched.status_code == 200 and patched.get_json()["name"] == "Acme Group AB"
    assert len(directory.requests) == 4
    card = admin.get(f"/smp/businesscard/{quote(ACME_ID.uri, safe='')}").data
    assert b"Acme Group AB" in card

    state = admin.post(f"{base}/receiving", json={"enabled": False}).get_json()
    assert state["sml"]["status"] == "unregistered" and state["receiving_enabled"] is False
    assert local_sml.registered(our_smp_id) == set()
    assert admin.delete(base).status_code == 204
    assert admin.get(base).status_code == 404


def test_deleting_an_organisation_unregisters_it_first(admin: FlaskClient, local_sml: RunningSml,
                                                       our_smp_id: str) -> None:
    body = create(admin, participants=[{"identifier": "0007:5567321707", "receiving": True}])
    assert local_sml.registered(our_smp_id) == {ACME_ID}
    assert admin.delete(f"/admin/api/organisations/{body['id']}").status_code == 204
    assert local_sml.registered(our_smp_id) == set()
    assert admin.get(f"/admin/api/organisations/{body['id']}").status_code == 404


def test_delete_is_refused_while_the_sml_still_holds_the_participant(admin: FlaskClient, local_sml: RunningSml,
                                                                     our_smp_id: str) -> None:
    body = create(admin, participants=[{"identifier": "0007:5567321707", "receiving": True}])
    participant_id = body["participants"][0]["id"]
    # someone else's SMP holds it now: the SML refuses our delete
    local_sml.client(our_smp_id).delete_participant(ACME_ID)
    local_sml.other_provider().create_participant(ACME_ID)
    refused = admin.delete(f"/admin/api/participants/{participant_id}")
    assert refused.status_code == 409
    assert "does not let our SMP certificate manage" in refused.get_json()["detail"]
    assert admin.get(f"/admin/api/participants/{participant_id}").status_code == 200
    assert admin.delete(f"/admin/api/participants/{participant_id}?force=true").status_code == 204


def test_receiving_and_migrate_validate_their_bodies(admin: FlaskClient, local_sml: RunningSml) -> None:
    participant_id = create(admin, participants=[{"identifier": "0007:5567321707"}])["participants"][0]["id"]
    base = f"/admin/api/participants/{participant_id}"
    assert admin.post(f"{base}/receiving", json={}).get_json()["errors"][0]["field"] == "enabled"
    assert admin.post(f"{base}/receiving", data="x", content_type="text/plain").status_code == 415
    weak = admin.post(f"{base}/migrate", json={"key": "password"})
    assert weak.status_code == 422 and weak.get_json()["errors"][0]["field"] == "key"
    assert admin.post("/admin/api/participants/999/receiving", json={"enabled": True}).status_code == 404

    other = local_sml.other_provider()
    other.create_participant(ACME_ID)
    state = admin.post(f"{base}/receiving", json={"enabled": True}).get_json()
    assert state["sml"]["status"] == "registered-elsewhere"
    key = new_migration_key()
    other.prepare_to_migrate(ACME_ID, key)
    state = admin.post(f"{base}/migrate", json={"key": key}).get_json()
    assert state["sml"] == {"status": "registered", "error": None}


def test_our_smp_in_the_sml(admin: FlaskClient, gateway: Gateway, our_smp_id: str) -> None:
    record = admin.get("/admin/api/sml").get_json()
    assert record["smp_id"] == our_smp_id and record["logical_address"] == gateway.smp_url
    assert admin.put("/admin/api/sml").get_json()["logical_address"] == gateway.smp_url


CSV = (
    "org_number,name,country,participant,receive,contact_email\n"
    "5567321707,Acme AB,SE,0007:5567321707,yes,peppol@acme.example\n"
    "5567321707,Acme AB,SE,0088:7300010000001,no,peppol@acme.example\n"
    "5560000001,Broken AB,SE,0007:5560000002,yes,\n"
)


def test_import_csv_body_and_multipart(admin: FlaskClient, local_sml: RunningSml, our_smp_id: str) -> None:
    dry = admin.post("/admin/api/imports?dry_run=true", data=CSV.encode(), content_type="text/csv").get_json()
    assert dry["dry_run"] is True and dry["counts"] == {"valid": 2, "unchanged": 0, "invalid": 1}
    assert local_sml.registered(our_smp_id) == set()

    report = admin.post("/admin/api/imports", data={"file": (io.BytesIO(("\ufeff" + CSV).encode()), "register.csv")},
                        content_type="multipart/form-data").get_json()
    assert [(r["line"], r["outcome"]) for r in report["results"]] == [(2, "registered"), (3, "created"),
                                                                      (4, "invalid")]
    assert "check digit" in report["results"][2]["message"]
    assert local_sml.registered(our_smp_id) == {ACME_ID}

    again = admin.post("/admin/api/imports", data=CSV.encode(), content_type="text/csv").get_json()
    assert [r["outcome"] for r in again["results"]] == ["unchanged", "unchanged", "invalid"]


def test_import_file_errors(admin: FlaskClient) -> None:
    bad_header = admin.post("/admin/api/imports", data=b"orgnr,name\n", content_type="text/csv")
    assert bad_header.status_code == 422 and "unknown column(s) 'orgnr'" in bad_header.get_json()["detail"]
    latin1 = admin.post("/admin/api/imports", data="org_number,name,country,participant\n1,Åre,SE,0007:1\n"
                        .encode("latin-1"), content_type="text/csv")
    assert latin1.status_code == 422 and "not UTF-8" in latin1.get_json()["detail"]
    no_file = admin.post("/admin/api/imports", data={"other": "x"}, content_type="multipart/form-data")
    assert no_file.status_code == 400
