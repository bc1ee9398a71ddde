"""SML registration: SOAP messages against the vectors, faults -> admin messages, the local SML end to
end (SOAP over real HTTP, NAPTR records in a real DNS server process), client-certificate TLS."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from werkzeug.serving import make_server

from certs.keystore import load_certificates
from smp import smlsoap
from smp.identifiers import ParticipantId
from smp.localsml import LocalSml, create_local_sml_app
from smp.lookup import SmlLookup, naptr_name
from smp.sml import (
    SmlAlreadyRegistered,
    SmlBadRequest,
    SmlClient,
    SmlError,
    SmlInternalError,
    SmlNotFound,
    SmlUnauthorized,
    SmlUnavailable,
    SmpRecord,
    new_migration_key,
)
from smp.smlsoap import migration_key_problem
from smp.zonestore import ZoneStore, smp_record
from tests.smp.registry_support import (
    LOCAL_ZONE,
    PKI,
    SMP_VECTORS,
    CaptureServer,
    Recorded,
    assert_valid,
    local_sml_process,
    semantic,
    sml_schema,
    soap_action_of_vector,
)
from tests.smp.zones import names as zone_names
from tests.smp.zones import set_records

SOAP = SMP_VECTORS / "sml-soap"
SMP_ID = "EXAMPLE-SMP-01"
PARTICIPANT = ParticipantId.parse("9915:smpdigesttest")
KEY = "Ab1#Cd2$efGH34"

BUILT = {
    "mpi-create-request.xml": smlsoap.create_participant(SMP_ID, PARTICIPANT),
    "mpi-delete-request.xml": smlsoap.delete_participant(SMP_ID, PARTICIPANT),
    "mpi-preparetomigrate-request.xml": smlsoap.prepare_to_migrate(SMP_ID, PARTICIPANT, KEY),
    "mpi-migrate-request.xml": smlsoap.migrate("EXAMPLE-SMP-02", PARTICIPANT, KEY),
    "mpi-list-request.xml": smlsoap.list_participants(SMP_ID, "0"),
    "msm-create-request.xml": smlsoap.create_smp(SMP_ID, "https://smp.example.test", "1.1.1.1"),
    "msm-update-request.xml": smlsoap.update_smp(SMP_ID, "https://smp.example.test", "1.1.1.1"),
    "msm-read-request.xml": smlsoap.read_smp(SMP_ID),
    "msm-delete-request.xml": smlsoap.delete_smp(SMP_ID),
}


# --- messages against the vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILT))
def test_request_matches_vector(name: str) -> None:
    call = BUILT[name]
    vector = SOAP / name
    assert semantic(call.envelope) == semantic(vector.read_bytes())
    assert call.soap_action == soap_action_of_vector(vector)
    expected_service = "manageparticipantidentifier" if name.startswith("mpi") else "manageservicemetadata"
    assert call.service == expected_service
    assert call.envelope.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_participant_actions_have_nine_spaces() -> None:
    assert smlsoap.create_participant(SMP_ID, PARTICIPANT).soap_action == (
        "http://busdox.org/serviceMetadata/ManageBusinessIdentifierService/1.0/" + " " * 9 + ":createIn")
    assert smlsoap.create_smp(SMP_ID, "https://x", "1.1.1.1").soap_action == (
        "http://busdox.org/serviceMetadata/ManageServiceMetadataService/1.0/:createIn")


@pytest.mark.parametrize("name", sorted(set(BUILT) - {"msm-read-request.xml"}))
def test_request_payloads_are_xsd_valid(name: str) -> None:
    # msm-read deliberately omits the formally mandatory PublisherEndpoint, as peppol-commons does
    payload = smlsoap.read_payload(BUILT[name].envelope)
    assert payload is not None
    assert_valid(sml_schema(), payload)


def test_answers_match_vectors() -> None:
    page = smlsoap.participant_page_response(
        SMP_ID, [ParticipantId.parse("9915:smpdigesttest1"), ParticipantId.parse("9915:smpdigesttest2")], "1")
    assert semantic(page) == semantic((SOAP / "mpi-list-response.xml").read_bytes())
    record = smlsoap.smp_record_response(SmpRecord(SMP_ID, "https://smp.example.test", "1.1.1.1"))
    assert semantic(record) == semantic((SOAP / "msm-read-response.xml").read_bytes())
    assert semantic(smlsoap.void_response()) == semantic((SOAP / "void-success-response.xml").read_bytes())


def test_read_answers_from_vectors() -> None:
    page = smlsoap.read_participant_page(smlsoap.read_payload((SOAP / "mpi-list-response.xml").read_bytes()))
    assert [p.uri for p in page.participants] == ["iso6523-actorid-upis::9915:smpdigesttest1",
                                                  "iso6523-actorid-upis::9915:smpdigesttest2"]
    assert page.next_page == "1"
    record = smlsoap.read_smp_record(smlsoap.read_payload((SOAP / "msm-read-response.xml").read_bytes()))
    assert record == SmpRecord(SMP_ID, "https://smp.example.test", "1.1.1.1")
    assert smlsoap.read_payload((SOAP / "void-success-response.xml").read_bytes()) is None
    assert smlsoap.read_fault((SOAP / "void-success-response.xml").read_bytes()) is None


@pytest.mark.parametrize("name", sorted(BUILT))
def test_server_reads_vector_requests(name: str) -> None:
    vector = SOAP / name
    call = BUILT[name]
    req = smlsoap.read_request(call.service, f'"{soap_action_of_vector(vector)}"', vector.read_bytes())
    assert (req.service, req.operation) == (call.service, call.operation)
    assert req.smp_id == ("EXAMPLE-SMP-02" if "migrate-request" in name and "prepare" not in name else SMP_ID)
    if name.startswith("mpi") and "list" not in name:
        assert req.participant == PARTICIPANT
    if "migrate" in name:
        assert req.migration_key == KEY
    if name in ("msm-create-request.xml", "msm-update-request.xml"):
        assert (req.logical_address, req.physical_address) == ("https://smp.example.test", "1.1.1.1")
    if "list" in name:
        assert req.next_page == "0"


def test_server_rejects_wrong_soap_action() -> None:
    call = smlsoap.create_participant(SMP_ID, PARTICIPANT)
    eight_spaces = call.soap_action.replace(" " * 9, " " * 8)
    with pytest.raises(ValueError, match="does not match createIn"):
        smlsoap.read_request(call.service, eight_spaces, call.envelope)
    with pytest.raises(ValueError, match="not an operation of /manageservicemetadata"):
        smlsoap.read_request("manageservicemetadata", None, call.envelope)


@pytest.mark.parametrize(("name", "kind", "code", "start"), [
    ("fault-notfound-icd130.xml", "NotFoundFault", "ERR-100", "[ERR-100] The SMP 'testSMPPrepareToMigrate520'"),
    ("fault-badrequest-icd130.xml", "BadRequestFault", "ERR-106",
     "[ERR-106] Participant Identifier Value contains the illegal issuing agency '0185'"),
    ("fault-unauthorized-constructed.xml", "UnauthorizedFault", "ERR-101", "[ERR-101] Unauthorized"),
])
def test_fault_vectors_are_read(name: str, kind: str, code: str, start: str) -> None:
    fault = smlsoap.read_fault((SOAP / name).read_bytes())
    assert fault is not None
    assert (fault.kind, fault.code, fault.faultcode) == (kind, code, "soap:Server")
    assert fault.message.startswith(start)
    assert not fault.is_duplicate


# --- the client against recorded answers -------------------------------------------------------------------


@contextmanager
def sml_answering(status: int, body: bytes, content_type: str = "text/xml; charset=UTF-8") -> Iterator[CaptureServer]:
    with CaptureServer(lambda r: (status, body, content_type)) as server:
        yield server


def fault(kind: str, message: str) -> bytes:
    return smlsoap.fault_response(kind, message)


def test_client_sends_exact_soap_request() -> None:
    with sml_answering(200, (SOAP / "void-success-response.xml").read_bytes()) as server:
        SmlClient(server.base + "/edelivery-sml/", SMP_ID, timeout=5).create_participant(PARTICIPANT)
    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == "/edelivery-sml/manageparticipantidentifier"
    assert request.headers["SOAPAction"] == f'"{smlsoap.create_participant(SMP_ID, PARTICIPANT).soap_action}"'
    assert request.headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert semantic(request.body) == semantic((SOAP / "mpi-create-request.xml").read_bytes())


@pytest.mark.parametrize(("vector", "error", "words"), [
    ("fault-notfound-icd130.xml", SmlNotFound, ["EXAMPLE-SMP-01 is not registered in this SML", "the right network"]),
    ("fault-badrequest-icd130.xml", SmlBadRequest, ["rejected", "illegal issuing agency '0185'"]),
    ("fault-unauthorized-constructed.xml", SmlUnauthorized, ["SMP certificate", "EXAMPLE-SMP-01"]),
])
def test_fault_vectors_become_admin_errors(vector: str, error: type[SmlError], words: list[str]) -> None:
    with sml_answering(500, (SOAP / vector).read_bytes()) as server:
        with pytest.raises(error) as caught:
            SmlClient(server.base, SMP_ID, timeout=5).create_participant(PARTICIPANT)
    assert type(caught.value) is error
    for word in words:
        assert word in caught.value.message
    assert caught.value.detail.startswith("[ERR-")
    assert caught.value.http_status == 500


@pytest.mark.parametrize("body", [
    fault("BadRequestFault", "[ERR-112] The participant identifier 'iso6523-actorid-upis::9915:smpdigesttest' "
                             "already exist on database"),
    fault("InternalErrorFault", "[ERR-112] Duplicate participant"),
    fault("BadRequestFault", "The participant identifier is already registered"),
])
def duplicate_then_list(duplicate: bytes, listed: list[ParticipantId]) -> CaptureServer:
    """An SML answering Create with `duplicate` and List with a page of `listed`."""
    def reply(request: Recorded) -> tuple[int, bytes, str]:
        if request.headers["SOAPAction"].endswith(':listIn"'):
            return 200, smlsoap.participant_page_response(SMP_ID, listed, None), "text/xml"
        return 500, duplicate, "text/xml"

    return CaptureServer(reply)


@pytest.mark.parametrize("body", [
    fault("BadRequestFault", "[ERR-112] The participant identifier 'iso6523-actorid-upis::9915:smpdigesttest' "
                             "already exist on database"),
    fault("InternalErrorFault", "[ERR-112] Duplicate participant"),
    fault("BadRequestFault", "The participant identifier is already registered"),
])
def test_already_registered_by_another_smp_explains_the_migration(body: bytes) -> None:
    with duplicate_then_list(body, [ParticipantId.parse("9915:someone-else")]) as server:
        with pytest.raises(SmlAlreadyRegistered) as caught:
            SmlClient(server.base, SMP_ID, timeout=5).create_participant(PARTICIPANT)
    message = caught.value.message
    assert "iso6523-actorid-upis::9915:smpdigesttest is already registered" in message
    assert "another" in message and "service provider" in message
    assert "ask the current provider for a migration key (PrepareToMigrate), then enter it here to Migrate" \
        in message.replace("Ask", "ask")
    assert not caught.value.retryable
    assert [r.headers["SOAPAction"].rsplit(":", 1)[1] for r in server.requests] == ['createIn"', 'listIn"']


def test_duplicate_of_our_own_registration_is_success() -> None:
    duplicate = fault("BadRequestFault", "[ERR-112] already exists")
    with duplicate_then_list(duplicate, [ParticipantId.parse("9915:SMPDIGESTTEST")]) as server:
        SmlClient(server.base, SMP_ID, timeout=5).create_participant(PARTICIPANT)
    assert len(server.requests) == 2


def test_duplicate_stays_a_duplicate_when_the_list_fails() -> None:
    with sml_answering(500, fault("BadRequestFault", "[ERR-112] already exists")) as server:
        with pytest.raises(SmlAlreadyRegistered):
            SmlClient(server.base, SMP_ID, timeout=5).create_participant(PARTICIPANT)


def test_internal_error_is_retryable() -> None:
    with sml_answering(500, fault("InternalErrorFault", "[ERR-105] generic technical error")) as server:
        with pytest.raises(SmlInternalError) as caught:
            SmlClient(server.base, SMP_ID, timeout=5).delete_participant(PARTICIPANT)
    assert caught.value.retryable
    assert "try again later" in caught.value.message


def test_not_found_on_delete_and_migrate() -> None:
    with sml_answering(500, fault("NotFoundFault", "[ERR-110] participant not found")) as server:
        with pytest.raises(SmlNotFound, match="nothing to delete"):
            SmlClient(server.base, SMP_ID, timeout=5).delete_participant(PARTICIPANT)
    with sml_answering(500, fault("NotFoundFault", "[ERR-111] migration data not found")) as server:
        with pytest.raises(SmlNotFound, match="run PrepareToMigrate again"):
            SmlClient(server.base, SMP_ID, timeout=5).migrate(PARTICIPANT, KEY)


@pytest.mark.parametrize(("status", "body", "error", "words"), [
    (403, b"<html><body>Forbidden</body></html>", SmlUnauthorized, "client certificate"),
    (401, b"", SmlUnauthorized, "client certificate"),
    (404, b"<html>Not Found</html>", SmlUnavailable, "HTTP 404"),
    (200, b"<html>maintenance</html>", SmlUnavailable, "HTTP 200"),
    (502, b"bad gateway", SmlUnavailable, "HTTP 502"),
])
def test_non_soap_answers(status: int, body: bytes, error: type[SmlError], words: str) -> None:
    with sml_answering(status, body, "text/html") as server:
        with pytest.raises(error, match=words) as caught:
            SmlClient(server.base, SMP_ID, timeout=5).create_smp("https://smp.example.test", "1.1.1.1")
    assert caught.value.http_status == status


def test_unreachable_sml() -> None:
    with CaptureServer() as server:
        base = server.base
    with pytest.raises(SmlUnavailable, match="could not be reached") as caught:
        SmlClient(base, SMP_ID, timeout=2).read_smp()
    assert caught.value.retryable


def test_unreadable_success_answer() -> None:
    with sml_answering(200, (SOAP / "void-success-response.xml").read_bytes()) as server:
        with pytest.raises(SmlUnavailable, match="cannot be read: SML Read answer has no"):
            SmlClient(server.base, SMP_ID, timeout=5).read_smp()


def test_prepare_change_certificate_matches_vector() -> None:
    new_cert = load_certificates(PKI / "smp-b.cert.pem")[0]
    call = smlsoap.prepare_change_certificate(new_cert.public_bytes(Encoding.DER), dt.date(2026, 12, 1))
    vector = SOAP / "bdmsl-preparechangecertificate-request.xml"
    expected = etree.fromstring(vector.read_bytes())
    # the vector holds a placeholder where the certificate goes
    (key,) = expected.iter(f"{{{smlsoap.BDMSL_DATA_NS}}}newCertificatePublicKey")
    key.text = base64.b64encode(new_cert.public_bytes(Encoding.DER)).decode()
    assert semantic(call.envelope) == semantic(etree.tostring(expected))
    assert (call.service, call.soap_action) == ("bdmslservice", soap_action_of_vector(vector))
    without_date = smlsoap.read_payload(smlsoap.prepare_change_certificate(b"\x30\x00").envelope)
    assert without_date is not None and [etree.QName(c).localname for c in without_date] == ["newCertificatePublicKey"]


def test_client_announces_a_new_certificate() -> None:
    new_cert = load_certificates(PKI / "smp-b.cert.pem")[0]
    with sml_answering(200, smlsoap.void_response()) as server:
        client = SmlClient(server.base, SMP_ID, timeout=5)
        client.prepare_change_certificate(new_cert, dt.date(2026, 12, 1), today=dt.date(2026, 11, 21))
        with pytest.raises(SmlBadRequest, match="2026-11-20 is in the past"):
            client.prepare_change_certificate(new_cert, dt.date(2026, 11, 20), today=dt.date(2026, 11, 21))
    (request,) = server.requests
    assert request.path == "/bdmslservice"
    assert request.headers["SOAPAction"] == '"ec:services:wsdl:BDMSL:1.0:prepareChangeCertificateIn"'
    assert b"<ec:migrationDate>2026-12-01</ec:migrationDate>" in request.body


# --- migration keys ------------------------------------------------------------------------------------------


def test_generated_migration_keys_follow_the_bdmsl_rule() -> None:
    keys = {new_migration_key() for _ in range(300)}
    assert len(keys) == 300
    for key in keys:
        assert migration_key_problem(key) is None
        assert len(key) == 16
    assert migration_key_problem(new_migration_key(8)) is None
    assert migration_key_problem(new_migration_key(24)) is None
    with pytest.raises(ValueError):
        new_migration_key(7)


@pytest.mark.parametrize(("key", "problem"), [
    (KEY, None),
    ("Ab1#Cd2", "8 to 24 characters"),
    ("Ab1#Cd2$efGH34" * 2, "8 to 24 characters"),
    ("Ab1# Cd2$efGH", "whitespace"),
    ("Ab1#Cd2efGH34", "2 special characters"),
    ("ab1#cd2$efgh34", "2 upper-case letters"),
    ("AB1#CD2$EFGH34", "2 lower-case letters"),
    ("Ab1#Cd$$efGHxy", "2 digits"),
])
def test_migration_key_rule(key: str, problem: str | None) -> None:
    found = migration_key_problem(key)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_bad_key_is_refused_before_anything_is_sent() -> None:
    with sml_answering(200, smlsoap.void_response()) as server:
        with pytest.raises(SmlBadRequest, match="copied completely"):
            SmlClient(server.base, SMP_ID, timeout=5).migrate(PARTICIPANT, "short")
    assert server.requests == []


# --- the local SML, end to end ----------------------------------------------------------------------------


def naptr(dns_port: int, participant: ParticipantId) -> tuple[int, list[str]]:
    query = dns.message.make_query(naptr_name(participant, LOCAL_ZONE), "NAPTR")
    answer = dns.query.udp(query, "127.0.0.1", port=dns_port, timeout=3)
    regexps = [rd.regexp.decode() for rrset in answer.answer for rd in rrset]
    flags = {(rd.flags.decode(), rd.service.decode()) for rrset in answer.answer for rd in rrset}
    assert flags in (set(), {("U", "Meta:SMP")})
    return answer.rcode(), regexps


@pytest.mark.integration
def test_local_sml_end_to_end(tmp_path: Path) -> None:
    participant = ParticipantId.parse("9915:LocalE2E")
    with local_sml_process(tmp_path) as sml:
        a = SmlClient(sml.url, "SMP-A", timeout=5)
        b = SmlClient(sml.url, "SMP-B", timeout=5)
        a.create_smp("http://127.0.0.1:8081", "127.0.0.1")
        b.create_smp("https://smp-b.example.test/smp", "127.0.0.1")
        assert a.read_smp() == SmpRecord("SMP-A", "http://127.0.0.1:8081", "127.0.0.1")
        assert naptr(sml.dns_port, participant)[0] == dns.rcode.NXDOMAIN

        a.create_participant(participant)
        assert naptr(sml.dns_port, participant) == (dns.rcode.NOERROR, ["!^.*$!http://127.0.0.1:8081!"])
        # the discovery side finds it through the same DNS server (case-insensitive value)
        found = SmlLookup(LOCAL_ZONE, [f"127.0.0.1:{sml.dns_port}"], timeout=3).lookup(
            ParticipantId.parse("9915:locale2e"))
        assert found.smp_uri == "http://127.0.0.1:8081"
        assert a.list_participants() == [participant]
        assert b.list_participants() == []

        # another SMP: duplicate fault with the migration way out; no delete, no migration preparation
        with pytest.raises(SmlAlreadyRegistered, match="migration key"):
            b.create_participant(participant)
        with pytest.raises(SmlUnauthorized, match="managed by another SMP"):
            b.delete_participant(participant)
        with pytest.raises(SmlUnauthorized):
            b.prepare_to_migrate(participant, KEY)
        # the SML answers the duplicate fault to the owner too (as BDMSL does); for the owner it is a success
        call = smlsoap.create_participant("SMP-A", participant)
        raw = requests.post(f"{sml.url}/{call.service}", data=call.envelope, timeout=5,
                            headers={"SOAPAction": f'"{call.soap_action}"', "Content-Type": "text/xml"})
        duplicate = smlsoap.read_fault(raw.content)
        assert duplicate is not None and duplicate.is_duplicate
        a.create_participant(ParticipantId.parse("9915:LOCALE2E"))
        assert a.list_participants() == [participant]

        # migration: A prepares with a key, B migrates with it; the NAPTR record follows
        key = new_migration_key()
        with pytest.raises(SmlNotFound, match="no migration prepared"):
            b.migrate(participant, key)
        a.prepare_to_migrate(participant, key)
        with pytest.raises(SmlNotFound):
            b.migrate(participant, new_migration_key())
        b.migrate(participant, key)
        assert naptr(sml.dns_port, participant)[1] == ["!^.*$!https://smp-b.example.test/smp!"]
        assert a.list_participants() == []
        assert b.list_participants() == [participant]
        with pytest.raises(SmlNotFound):
            b.migrate(participant, key)  # a key works once
        with pytest.raises(SmlUnauthorized):
            a.delete_participant(participant)

        b.delete_participant(participant)
        assert naptr(sml.dns_port, participant)[0] == dns.rcode.NXDOMAIN
        with pytest.raises(SmlNotFound, match="nothing to delete"):
            b.delete_participant(participant)


@pytest.mark.integration
def test_local_sml_smp_lifecycle_and_faults(tmp_path: Path) -> None:
    first, second = ParticipantId.parse("9915:one"), ParticipantId.parse("9915:two")
    with local_sml_process(tmp_path) as sml:
        a = SmlClient(sml.url, "SMP-A", timeout=5)
        with pytest.raises(SmlNotFound, match="SMP ID SMP-A is not registered"):
            a.create_participant(first)
        with pytest.raises(SmlNotFound):
            a.read_smp()
        a.create_smp("http://127.0.0.1:1111", "127.0.0.1")
        with pytest.raises(SmlBadRequest, match="already exists"):
            a.create_smp("http://127.0.0.1:1111", "127.0.0.1")
        with pytest.raises(SmlBadRequest, match="not an http"):
            a.update_smp("ftp://nope", "127.0.0.1")
        with pytest.raises(SmlBadRequest, match="9999"):
            a.create_participant(ParticipantId("iso6523-actorid-upis", "9999:unknown-icd"))
        a.create_participant(first)
        a.create_participant(second)
        a.update_smp("http://127.0.0.1:2222", "127.0.0.1")
        assert naptr(sml.dns_port, first)[1] == ["!^.*$!http://127.0.0.1:2222!"]
        assert naptr(sml.dns_port, second)[1] == ["!^.*$!http://127.0.0.1:2222!"]
        zone = ZoneStore(sml.store)
        try:
            assert zone_names(zone) == {naptr_name(first, LOCAL_ZONE), naptr_name(second, LOCAL_ZONE)}
        finally:
            zone.close()

        # a request with the wrong SOAPAction is a BadRequestFault, as the real SML would answer
        call = smlsoap.create_participant("SMP-A", first)
        response = requests.post(sml.url + "/manageparticipantidentifier", data=call.envelope, timeout=5,
                                 headers={"SOAPAction": '"createIn"', "Content-Type": "text/xml"})
        assert response.status_code == 500
        answer = smlsoap.read_fault(response.content)
        assert answer is not None and answer.kind == "BadRequestFault" and "SOAPAction" in answer.message

        a.delete_smp()
        assert naptr(sml.dns_port, first)[0] == dns.rcode.NXDOMAIN
        assert naptr(sml.dns_port, second)[0] == dns.rcode.NXDOMAIN


@contextmanager
def in_process_sml(sml: LocalSml, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_local_sml_app(sml), threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        sml.close()


def test_list_reads_every_page_and_state_survives_restart(tmp_path: Path) -> None:
    participants = [ParticipantId.parse(f"9915:paged-{i}") for i in range(5)]
    sml = LocalSml(tmp_path / "sml.sqlite", page_size=2)
    with in_process_sml(sml) as url:
        client = SmlClient(url, "SMP-A", timeout=5)
        client.create_smp("http://127.0.0.1:1", "127.0.0.1")
        for participant in participants:
            client.create_participant(participant)
        first_page = smlsoap.read_participant_page(smlsoap.read_payload(
            requests.post(url + "/manageparticipantidentifier", timeout=5,
                          data=smlsoap.list_participants("SMP-A").envelope,
                          headers={"SOAPAction": smlsoap.list_participants("SMP-A").soap_action}).content))
        assert len(first_page.participants) == 2 and first_page.next_page == "1"
        assert sorted(p.value for p in client.list_participants()) == sorted(p.value for p in participants)
    zone = ZoneStore(tmp_path / "sml.sqlite")
    assert len(zone_names(zone)) == 5
    zone.close()
    reopened = LocalSml(tmp_path / "sml.sqlite", page_size=2)
    with in_process_sml(reopened) as url:
        assert len(SmlClient(url, "SMP-A", timeout=5).list_participants()) == 5


def test_local_sml_keeps_the_names_of_other_writers(tmp_path: Path) -> None:
    zone = ZoneStore(tmp_path / "sml.sqlite")
    foreign = f"foreign.iso6523-actorid-upis.{LOCAL_ZONE}"
    set_records(zone, foreign, [smp_record("http://other.example.test")])
    participant = ParticipantId.parse("9915:mine")
    with in_process_sml(LocalSml(tmp_path / "sml.sqlite")) as url:
        client = SmlClient(url, "SMP-A", timeout=5)
        client.create_smp("http://127.0.0.1:1", "127.0.0.1")
        client.create_participant(participant)
        assert zone_names(zone) == {foreign, naptr_name(participant, LOCAL_ZONE)}
        client.update_smp("http://127.0.0.1:2", "127.0.0.1")
        assert zone.lookup(naptr_name(participant, LOCAL_ZONE))[0] == [smp_record("http://127.0.0.1:2")]
        client.delete_smp()
    assert zone_names(zone) == {foreign}
    assert zone.lookup(foreign)[0] == [smp_record("http://other.example.test")]
    zone.close()


def test_a_store_of_another_zone_is_refused(tmp_path: Path) -> None:
    LocalSml(tmp_path / "sml.sqlite", "one.peppol.test").close()
    with pytest.raises(ValueError, match=r"publishes the zone 'one.peppol.test', not 'two.peppol.test'"):
        LocalSml(tmp_path / "sml.sqlite", "two.peppol.test")


class CountingSession(requests.Session):
    """A real HTTP session that counts the List pages requested (to see when the client lists)."""

    def __init__(self) -> None:
        super().__init__()
        self.list_pages = 0

    def post(self, url: str | bytes, data: object = None, json: object = None, **kwargs: object) -> requests.Response:
        if b"PageRequest" in (data if isinstance(data, bytes) else b""):
            self.list_pages += 1
        return super().post(url, data=data, json=json, **kwargs)  # type: ignore[arg-type]


def test_duplicates_of_our_own_participants_list_once_per_client(tmp_path: Path) -> None:
    participants = [ParticipantId.parse(f"9915:again-{i}") for i in range(5)]
    sml = LocalSml(tmp_path / "sml.sqlite", page_size=2)
    with in_process_sml(sml) as url:
        first = SmlClient(url, "SMP-A", timeout=5)
        first.create_smp("http://127.0.0.1:1", "127.0.0.1")
        for participant in participants[:4]:
            first.create_participant(participant)
        session = CountingSession()
        again = SmlClient(url, "SMP-A", timeout=5, session=session)
        for participant in participants[:4]:
            again.create_participant(participant)  # duplicate answers, all ours: one listing of 2 pages
        assert session.list_pages == 2
        again.create_participant(participants[4])  # a new one joins the known set without a listing
        again.create_participant(participants[4])
        assert session.list_pages == 2
        # registered by another client of our SMP after the listing: re-checked, still ours
        late = ParticipantId.parse("9915:late")
        first.create_participant(late)
        again.create_participant(late)
        assert session.list_pages == 2 + 3


def test_duplicate_of_another_smp_after_our_delete_is_refused(tmp_path: Path) -> None:
    participant = ParticipantId.parse("9915:moved-away")
    sml = LocalSml(tmp_path / "sml.sqlite")
    with in_process_sml(sml) as url:
        ours = SmlClient(url, "SMP-A", timeout=5)
        ours.create_smp("http://127.0.0.1:1", "127.0.0.1")
        other = SmlClient(url, "SMP-B", timeout=5)
        other.create_smp("http://127.0.0.1:2", "127.0.0.1")
        ours.create_participant(participant)
        ours.create_participant(participant)  # loads the known set: ours
        ours.delete_participant(participant)  # and forgets it again
        other.create_participant(participant)
        with pytest.raises(SmlAlreadyRegistered, match="another SMP"):
            ours.create_participant(participant)
        with pytest.raises(SmlAlreadyRegistered, match="another SMP"):
            SmlClient(url, "SMP-A", timeout=5).create_participant(participant)


# --- client-certificate TLS -----------------------------------------------------------------------------------


def _tls_server_material(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throw-away TLS CA and a server certificate for 127.0.0.1 (the SML's public TLS side)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test SML TLS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = tmp_path / "tls-ca.pem", tmp_path / "tls.pem", tmp_path / "tls.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


@pytest.mark.integration
def test_client_certificate_tls(tmp_path: Path) -> None:
    ca_path, cert_path, key_path = _tls_server_material(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    # Like the SML: only clients with a certificate from the SMP CA get in.
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(PKI / "test-root-ca.cert.pem")
    context.load_verify_locations(PKI / "test-smp-ca.cert.pem")
    sml = LocalSml(tmp_path / "sml.sqlite")
    smp_cert = (str(PKI / "smp-a.cert.pem"), str(PKI / "smp-a.key.pem"))
    with in_process_sml(sml, context) as url:
        client = SmlClient(url, "SMP-A", client_cert=smp_cert, verify=str(ca_path), timeout=5)
        client.create_smp("https://smp.example.test", "127.0.0.1")
        assert client.read_smp().logical_address == "https://smp.example.test"
        with pytest.raises(SmlUnavailable, match="TLS connection to the SML") as caught:
            SmlClient(url, "SMP-A", verify=str(ca_path), timeout=5).read_smp()
        assert "SMP certificate" in caught.value.message
        rogue = (str(PKI / "smp-rogue.cert.pem"), str(PKI / "smp-rogue.key.pem"))
        with pytest.raises(SmlUnavailable, match="TLS"):
            SmlClient(url, "SMP-A", client_cert=rogue, verify=str(ca_path), timeout=5).read_smp()
        with pytest.raises(SmlUnavailable, match="TLS"):
            SmlClient(url, "SMP-A", client_cert=smp_cert, verify=True, timeout=5).read_smp()


def test_204_is_not_a_soap_success() -> None:
    # A void SML operation answers 200 with an empty soap:Body; anything else is not a confirmation.
    with CaptureServer() as server:
        with pytest.raises(SmlUnavailable, match="HTTP 204"):
            SmlClient(server.base, SMP_ID, timeout=5).delete_smp()
    (request,) = server.requests
    assert semantic(request.body) == semantic((SOAP / "msm-delete-request.xml").read_bytes())


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), st.sampled_from(
    [call.envelope[: n] for call in BUILT.values() for n in (60, 200, 300)])))
def test_garbage_requests_are_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        smlsoap.read_request("manageparticipantidentifier", None, data)


FAULT_VECTORS = [p.read_bytes() for p in sorted(SOAP.glob("fault-*.xml"))]


@settings(max_examples=200, deadline=None)
@given(vector=st.sampled_from(FAULT_VECTORS), cut=st.integers(min_value=0, max_value=1200),
       junk=st.binary(max_size=20))
def test_damaged_faults_are_read_or_refused(vector: bytes, cut: int, junk: bytes) -> None:
    data = vector[:cut] + junk + vector[cut:] if junk else vector[:cut]
    try:
        fault = smlsoap.read_fault(data)
    except ValueError:
        return
    # whatever still parses is either no fault at all or a fault with its kind and message
    assert fault is None or (fault.kind is not None and fault.message)
