"""Receiving on/off: our SMP (served from the store), the local SML over real SOAP, the Directory capture server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import etree

from accesspoint.app import create_app
from accesspoint.config import ConfigError, load_config
from accesspoint.flows import registrations
from accesspoint.gateway import Gateway
from accesspoint.store.models import (
    BIS_BILLING_INVOICE,
    Organisation,
    Participant,
    RegistrationStatus,
)
from smp.businesscard import parse_business_card
from smp.identifiers import ParticipantId
from smp.sml import new_migration_key
from tests.e2e.gateway_process import free_port
from tests.registrations.conftest import OTHER_SMP_ID, RunningSml, make_gateway
from tests.registrations.tls_support import MutualTlsServer
from tests.smp.registry_support import CaptureServer, Recorded

ACME = ParticipantId.parse("0007:5567321707")
SMP_NS = "{http://busdox.org/serviceMetadata/publishing/1.0/}"


def add_participant(gateway: Gateway, identifier: ParticipantId = ACME) -> int:
    with gateway.read() as session:
        organisation = Organisation(name="Acme AB", country="SE", org_number="5567321707", vat_number="SE556732170701",
                                    contact_email="peppol@acme.example")
        participant = Participant(scheme=identifier.scheme, value=identifier.value, organisation=organisation)
        participant.add_default_document_types()
        session.add(participant)
        session.flush()
        return participant.id


def smp_get(gateway: Gateway, path: str) -> tuple[int, bytes]:
    response = create_app(gateway=gateway).test_client().get("/smp/" + path)
    return response.status_code, response.data


def test_receiving_is_off_until_enabled_and_the_smp_serves_nothing(gateway: Gateway, local_sml: RunningSml,
                                                                   our_smp_id: str) -> None:
    participant_id = add_participant(gateway)
    state = registrations.state(gateway, participant_id)
    assert not state.receiving_enabled
    assert {state.smp.status, state.sml.status, state.directory.status} == {RegistrationStatus.UNREGISTERED}
    status, body = smp_get(gateway, quote(ACME.uri, safe=""))
    assert status == 404 and b"not served" in body
    assert local_sml.registered(our_smp_id) == set()


def test_enable_registers_everywhere_and_disable_removes_everywhere(
        gateway: Gateway, local_sml: RunningSml, directory: CaptureServer, our_smp_id: str) -> None:
    participant_id = add_participant(gateway)

    state = registrations.enable_receiving(gateway, participant_id)
    assert state.receiving_enabled
    assert (state.smp.status, state.sml.status, state.directory.status) == ("registered",) * 3
    assert state.registered_at is not None
    assert local_sml.registered(our_smp_id) == {ACME}
    assert [(r.method, r.body) for r in directory.requests] == [("PUT", ACME.uri.encode())]

    status, body = smp_get(gateway, quote(ACME.uri, safe=""))
    assert status == 200
    hrefs = [el.get("href") for el in etree.fromstring(body).iter(f"{SMP_NS}ServiceMetadataReference")]
    assert len(hrefs) == 2 and all(h.startswith(gateway.smp_url + "/") for h in hrefs)
    status, body = smp_get(gateway, f"{quote(ACME.uri, safe='')}/services/{quote(BIS_BILLING_INVOICE, safe='')}")
    assert status == 200 and b"SignedServiceMetadata" in body and gateway.as4_url.encode() in body
    status, body = smp_get(gateway, "businesscard/" + quote(ACME.uri, safe=""))
    card = parse_business_card(body)
    (entity,) = card.entities
    assert entity.names[0].text == "Acme AB" and entity.country_code == "SE"
    assert {(i.scheme, i.value) for i in entity.identifiers} == {("OrgNr", "5567321707"), ("VAT", "SE556732170701")}
    assert entity.registration_date == state.registered_at.date()

    state = registrations.disable_receiving(gateway, participant_id)
    assert not state.receiving_enabled
    assert (state.smp.status, state.sml.status, state.directory.status) == ("unregistered",) * 3
    assert state.registered_at is None
    assert local_sml.registered(our_smp_id) == set()
    assert directory.requests[-1].method == "DELETE"
    assert directory.requests[-1].path == "/indexer/1.0/" + quote(ACME.uri, safe="")
    assert smp_get(gateway, quote(ACME.uri, safe=""))[0] == 404
    assert smp_get(gateway, "businesscard/" + quote(ACME.uri, safe=""))[0] == 404


def test_registered_elsewhere_explains_migration_and_the_key_moves_it(
        gateway: Gateway, local_sml: RunningSml, directory: CaptureServer, our_smp_id: str) -> None:
    other = local_sml.other_provider()
    other.create_participant(ACME)
    participant_id = add_participant(gateway)

    state = registrations.enable_receiving(gateway, participant_id)
    assert state.sml.status == RegistrationStatus.REGISTERED_ELSEWHERE
    assert "already registered in the Peppol SML by another SMP" in (state.sml.error or "")
    assert "migration key" in (state.sml.error or "")
    # The Directory finds participants through the SML: nothing is published while another SMP holds it.
    assert state.directory.status == RegistrationStatus.PENDING and directory.requests == []

    # The customer gets a key from the current provider, who prepares the migration.
    key = new_migration_key()
    other.prepare_to_migrate(ACME, key)
    state = registrations.migrate_in(gateway, participant_id, key)
    assert (state.sml.status, state.sml.error) == (RegistrationStatus.REGISTERED, None)
    assert state.directory.status == RegistrationStatus.REGISTERED
    assert local_sml.registered(our_smp_id) == {ACME}
    assert local_sml.registered(OTHER_SMP_ID) == set()

    registrations.disable_receiving(gateway, participant_id)
    assert local_sml.registered(our_smp_id) == set()


def test_disabling_leaves_another_providers_record_alone(gateway: Gateway, local_sml: RunningSml) -> None:
    other = local_sml.other_provider()
    other.create_participant(ACME)
    participant_id = add_participant(gateway)
    assert registrations.enable_receiving(gateway, participant_id).sml.status == "registered-elsewhere"
    state = registrations.disable_receiving(gateway, participant_id)
    assert (state.sml.status, state.sml.error) == (RegistrationStatus.UNREGISTERED, None)
    assert local_sml.registered(OTHER_SMP_ID) == {ACME}


def test_wrong_migration_key_says_to_ask_again(gateway: Gateway, local_sml: RunningSml) -> None:
    other = local_sml.other_provider()
    other.create_participant(ACME)
    other.prepare_to_migrate(ACME, new_migration_key())
    participant_id = add_participant(gateway)
    state = registrations.migrate_in(gateway, participant_id, new_migration_key())
    assert state.sml.status == RegistrationStatus.FAILED
    assert "no migration prepared" in (state.sml.error or "")
    assert "run PrepareToMigrate again" in (state.sml.error or "")


def test_smp_not_registered_in_the_sml_is_named(tmp_path: Path, local_sml: RunningSml,
                                                directory: CaptureServer) -> None:
    gateway = make_gateway(tmp_path, sml__management_url=local_sml.url, directory__url=directory.base)
    participant_id = add_participant(gateway)
    state = registrations.enable_receiving(gateway, participant_id)
    assert state.sml.status == RegistrationStatus.FAILED
    assert f"Our SMP ID {gateway.smp_key.subject_cn} is not registered in this SML" in (state.sml.error or "")
    # the remedy is the gateway's own route, not the SML SOAP operation
    assert "PUT /admin/api/sml" in (state.sml.error or "") and "/resync" in (state.sml.error or "")
    assert "create_smp" not in (state.sml.error or "")
    assert state.directory.status == RegistrationStatus.PENDING
    # Our SMP still serves it: receiving is on, only the SML step is missing; resync after the fix completes it.
    assert smp_get(gateway, quote(ACME.uri, safe=""))[0] == 200
    with registrations.Registrar(gateway) as registrar:
        record = registrar.register_smp()
    assert record.logical_address == gateway.smp_url
    state = registrations.resync(gateway, participant_id)
    assert (state.sml.status, state.directory.status) == ("registered", "registered")


def test_sml_refusing_our_certificate_is_unauthorised(tmp_path: Path, directory: CaptureServer) -> None:
    page = b"<html><body>403 Forbidden: client certificate required</body></html>"
    with CaptureServer(lambda r: (403, page, "text/html")) as sml:
        gateway = make_gateway(tmp_path, sml__management_url=sml.base, directory__url=directory.base)
        participant_id = add_participant(gateway)
        state = registrations.enable_receiving(gateway, participant_id)
    assert state.sml.status == RegistrationStatus.FAILED
    assert "refused the connection (HTTP 403)" in (state.sml.error or "")
    assert "TLS client certificate" in (state.sml.error or "")


def test_sml_unauthorised_fault_is_named(gateway: Gateway, local_sml: RunningSml, our_smp_id: str) -> None:
    # Registered by another SMP and, unknown to us, removed from our side: our delete is refused by the SML.
    participant_id = add_participant(gateway)
    registrations.enable_receiving(gateway, participant_id)
    ours = local_sml.client(our_smp_id)
    ours.delete_participant(ACME)
    local_sml.other_provider().create_participant(ACME)
    state = registrations.disable_receiving(gateway, participant_id)
    assert state.sml.status == RegistrationStatus.FAILED
    assert "does not let our SMP certificate manage participant" in (state.sml.error or "")


def test_sml_not_found_on_delete_counts_as_removed(gateway: Gateway, local_sml: RunningSml, our_smp_id: str) -> None:
    participant_id = add_participant(gateway)
    registrations.enable_receiving(gateway, participant_id)
    local_sml.client(our_smp_id).delete_participant(ACME)
    state = registrations.disable_receiving(gateway, participant_id)
    assert (state.sml.status, state.sml.error) == (RegistrationStatus.UNREGISTERED, None)


def test_unreachable_sml_says_try_again_and_resync_repairs(tmp_path: Path, local_sml: RunningSml,
                                                           directory: CaptureServer, our_smp_id: str) -> None:
    with CaptureServer() as gone:
        dead_url = gone.base
    gateway = make_gateway(tmp_path, sml__management_url=dead_url, directory__url=directory.base)
    participant_id = add_participant(gateway)
    state = registrations.enable_receiving(gateway, participant_id)
    assert state.sml.status == RegistrationStatus.FAILED
    assert "could not be reached" in (state.sml.error or "") and "re-sync" in (state.sml.error or "")

    repaired = make_gateway(tmp_path, sml__management_url=local_sml.url, directory__url=directory.base)
    with registrations.Registrar(repaired) as registrar:
        registrar.register_smp()
    state = registrations.resync(repaired, participant_id)
    assert (state.sml.status, state.sml.error) == (RegistrationStatus.REGISTERED, None)
    assert local_sml.registered(our_smp_id) == {ACME}


def test_directory_failure_is_recorded_and_retried(tmp_path: Path, local_sml: RunningSml) -> None:
    answers = iter([(500, b"indexer down", "text/plain"), (204, b"", "text/plain")])

    def reply(_request: Recorded) -> tuple[int, bytes, str]:
        return next(answers)

    with CaptureServer(reply) as flaky:
        gateway = make_gateway(tmp_path, sml__management_url=local_sml.url, directory__url=flaky.base)
        with registrations.Registrar(gateway) as registrar:
            registrar.register_smp()
        participant_id = add_participant(gateway)
        state = registrations.enable_receiving(gateway, participant_id)
        assert state.sml.status == RegistrationStatus.REGISTERED
        assert state.directory.status == RegistrationStatus.FAILED
        assert "failed (HTTP 500)" in (state.directory.error or "")
        state = registrations.resync(gateway, participant_id)
        assert (state.directory.status, state.directory.error) == (RegistrationStatus.REGISTERED, None)


def test_local_without_a_running_sml_or_a_directory(tmp_path: Path) -> None:
    """Local: the SML is the one `peppol-ap run` would start (here none runs on that port)."""
    port = free_port()
    gateway = make_gateway(tmp_path, local_sml__port=str(port))
    participant_id = add_participant(gateway)
    state = registrations.enable_receiving(gateway, participant_id)
    assert state.smp.status == RegistrationStatus.REGISTERED
    assert state.sml.status == RegistrationStatus.FAILED
    assert f"The SML at http://127.0.0.1:{port}/manageparticipantidentifier could not be reached" in (
        state.sml.error or "")
    assert state.directory.status == RegistrationStatus.UNREGISTERED
    assert smp_get(gateway, quote(ACME.uri, safe=""))[0] == 200
    # switching off must reach the SML too (the failed registration may have arrived): it stays to be retried
    state = registrations.disable_receiving(gateway, participant_id)
    assert not state.receiving_enabled and state.sml.status == RegistrationStatus.FAILED
    assert smp_get(gateway, quote(ACME.uri, safe=""))[0] == 404


def test_republish_notifies_the_directory_for_listed_participants_only(
        gateway: Gateway, directory: CaptureServer) -> None:
    listed = add_participant(gateway)
    registrations.enable_receiving(gateway, listed)
    with gateway.read() as session:
        other = Participant(scheme="iso6523-actorid-upis", value="0088:7300010000001",
                            organisation=session.get(Participant, listed).organisation)
        session.add(other)
        session.flush()
        unlisted = other.id
    before = len(directory.requests)
    registrations.republish(gateway, [listed, unlisted])
    assert [(r.method, r.body) for r in directory.requests[before:]] == [("PUT", ACME.uri.encode())]


def test_concurrent_enable_many_registers_each_once(gateway: Gateway, local_sml: RunningSml, our_smp_id: str) -> None:
    identifiers = [ParticipantId.parse(f"0088:{gln}") for gln in ("7300010000001", "7300010000018", "7300010000025",
                                                                  "7300010000032")]
    ids = [add_participant(gateway, identifier) if i == 0 else _add_to_first(gateway, identifier)
           for i, identifier in enumerate(identifiers)]
    with registrations.Registrar(gateway) as registrar:
        states = registrations.enable_many(gateway, ids, registrar=registrar, workers=4)
    assert {s.sml.status for s in states.values()} == {RegistrationStatus.REGISTERED}
    assert local_sml.registered(our_smp_id) == set(identifiers)


def _add_to_first(gateway: Gateway, identifier: ParticipantId) -> int:
    with gateway.read() as session:
        organisation = session.query(Organisation).order_by(Organisation.id).first()
        participant = Participant(scheme=identifier.scheme, value=identifier.value, organisation=organisation)
        session.add(participant)
        session.flush()
        return participant.id


def test_worker_retries_unfinished_registrations_after_a_pause(tmp_path: Path, local_sml: RunningSml) -> None:
    answers = iter([(500, b"indexer down", "text/plain")] * 2 + [(204, b"", "text/plain")])

    def reply(_request: Recorded) -> tuple[int, bytes, str]:
        return next(answers)

    with CaptureServer(reply) as flaky:
        gateway = make_gateway(tmp_path, sml__management_url=local_sml.url, directory__url=flaky.base)
        with registrations.Registrar(gateway) as registrar:
            registrar.register_smp()
        participant_id = add_participant(gateway)
        assert registrations.enable_receiving(gateway, participant_id).directory.status == RegistrationStatus.FAILED
        assert registrations.retry_due(gateway) == 0  # just tried

        def age() -> None:
            with gateway.read() as session:
                session.get(Participant, participant_id).updated_at -= registrations.RETRY_AFTER * 1.5

        age()
        assert registrations.retry_due(gateway) == 1
        # failed again with the same words: the attempt still restarts the clock
        assert registrations.state(gateway, participant_id).directory.status == RegistrationStatus.FAILED
        assert registrations.retry_due(gateway) == 0
        age()
        assert registrations.retry_due(gateway) == 1
        assert registrations.state(gateway, participant_id).directory.status == RegistrationStatus.REGISTERED
        age()
        assert registrations.retry_due(gateway) == 0
    assert [r.method for r in flaky.requests] == ["PUT"] * 3


def test_unusable_service_urls_stop_start_up(tmp_path: Path, vectors: Path) -> None:
    with pytest.raises(ConfigError, match=r"sml.management_url: 'smp.example' is not an http\(s\) URL"):
        make_gateway(tmp_path, sml__management_url="smp.example")
    assert make_gateway(tmp_path, directory__url="http://directory.example").config.directory.url
    p12 = vectors / "as4/keys/peppol-test-ap-POP000306-EXPIRED-pw-peppol.p12"
    with pytest.raises(ConfigError, match=r"directory\.url: must be an https URL in the test environment"):
        load_config(None, {"PEPPOL_AP_ENVIRONMENT": "test", "PEPPOL_AP_KEYSTORE__PKCS12": str(p12),
                           "PEPPOL_AP_DIRECTORY__URL": "http://directory.example"})


def test_directory_over_tls_gets_our_smp_certificate(tmp_path: Path, local_sml: RunningSml,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = make_gateway(tmp_path, sml__management_url=local_sml.url)
    pki = gateway.config.data_dir / "pki"
    (tmp_path / "tls").mkdir()
    with MutualTlsServer(tmp_path / "tls", client_ca=pki / "smp-ca.pem") as indexer:
        # requests trusts this bundle for the server certificate (the real Directory has a public CA's)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(indexer.server_cert))
        gateway = make_gateway(tmp_path, sml__management_url=local_sml.url, directory__url=indexer.base)
        with registrations.Registrar(gateway) as registrar:
            registrar.register_smp()
            participant_id = add_participant(gateway)
            state = registrations.enable_receiving(gateway, participant_id, registrar=registrar)
            assert registrar._cert_dir is not None
            key_files = {f: f.stat().st_mode & 0o777 for f in Path(registrar._cert_dir.name).iterdir()}
        assert state.directory == registrations.StepResult(RegistrationStatus.REGISTERED)
    assert indexer.requests == [("PUT", "/indexer/1.0/", gateway.smp_key.subject_cn)]
    # the key file was private while it existed, and is gone with the registrar
    assert key_files[next(f for f in key_files if f.name.endswith(".key.pem"))] == 0o600
    assert not any(f.exists() for f in key_files)
