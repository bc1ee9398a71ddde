"""`peppol-ap organisations create|list`: a customer enrolled from the command line the way the admin API enrols
it (registered in the SML when receiving, audited as the CLI user), and the quickstart's network token in two
commands; errors are one line."""

from __future__ import annotations

import getpass

from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import select

from accesspoint.app import create_app
from accesspoint.cli.main import cli
from accesspoint.gateway import Gateway
from accesspoint.store.models import AuditRecord, Organisation
from smp.identifiers import ParticipantId
from tests.registrations.conftest import RunningSml

PARTICIPANT = "0007:5567321707"


def run(gateway: Gateway, local_sml: RunningSml, *args: str) -> Result:
    env = {"PEPPOL_AP_STORAGE__DATA_DIR": str(gateway.config.data_dir),
           "PEPPOL_AP_DATABASE__URL": gateway.config.database_url,
           "PEPPOL_AP_SML__MANAGEMENT_URL": local_sml.url,
           "PEPPOL_AP_DIRECTORY__URL": gateway.config.directory.url or ""}
    return CliRunner(env=env).invoke(cli, list(args))


def test_two_commands_give_a_network_token_of_a_receiving_organisation(
        gateway: Gateway, local_sml: RunningSml, our_smp_id: str) -> None:
    created = run(gateway, local_sml, "organisations", "create", "Acme AB", "--country", "se", "--org-number",
                  "5567321707", "--participant", PARTICIPANT, "--receiving")
    assert created.exit_code == 0, created.output
    organisation_id = created.stdout.strip().splitlines()[-1]
    assert ("iso6523-actorid-upis::0007:5567321707: receiving on; SMP registered, SML registered, Directory "
            "registered") in created.stdout
    assert ParticipantId.parse(PARTICIPANT) in local_sml.registered(our_smp_id)
    with gateway.read() as session:
        organisation = session.get(Organisation, int(organisation_id))
        assert (organisation.name, organisation.country) == ("Acme AB", "SE")
        actions = [(r.action, r.actor) for r in session.scalars(select(AuditRecord).order_by(AuditRecord.id))]
    assert ("organisation.create", f"cli:{getpass.getuser()}") in actions

    token = run(gateway, local_sml, "tokens", "create", "--org", organisation_id)
    assert token.exit_code == 0, token.output
    network: FlaskClient = create_app(gateway=gateway).test_client()
    inbox = network.get("/api/v1/inbound", headers={"Authorization": f"Bearer {token.stdout.splitlines()[-1]}"})
    assert inbox.status_code == 200 and inbox.get_json()["items"] == []

    listing = run(gateway, local_sml, "organisations", "list")
    assert listing.exit_code == 0 and "Acme AB" in listing.stdout and PARTICIPANT in listing.stdout


def test_errors_are_one_line_and_change_nothing(gateway: Gateway, local_sml: RunningSml) -> None:
    bad = run(gateway, local_sml, "organisations", "create", "Acme AB", "--country", "Sweden", "--participant",
              "0007:123")
    assert bad.exit_code == 2
    [line] = bad.stderr.strip().splitlines()
    assert "country" in line and "--participant" in line
    assert run(gateway, local_sml, "organisations", "create", "Acme AB", "--country", "SE", "--participant",
               PARTICIPANT).exit_code == 0
    taken = run(gateway, local_sml, "organisations", "create", "Other AB", "--country", "SE", "--participant",
                PARTICIPANT)
    assert taken.exit_code == 2
    assert taken.stderr.strip().splitlines()[-1].startswith("peppol-ap: iso6523-actorid-upis::0007:5567321707 is "
                                                            "already participant")
    with gateway.read() as session:
        assert [o.name for o in session.scalars(select(Organisation))] == ["Acme AB"]
