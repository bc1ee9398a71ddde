"""`peppol-ap organisations create|list`: enrol a customer from the command line, as `POST /admin/api/organisations`
does (accesspoint.flows.enrolment), so that a fresh install gets a network token in two commands:

    peppol-ap organisations create "Acme AB" --country SE --participant 0007:5567321707 --receiving
    peppol-ap tokens create --org 1
"""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accesspoint.cli.common import config_option, fail, load_gateway
from accesspoint.flows import enrolment
from accesspoint.flows.enrolment import EnrolmentConflict, ParticipantSpec
from accesspoint.flows.organisations import FieldError, clean_organisation, parse_participant
from accesspoint.flows.registrations import RegistrationState
from accesspoint.store.audit import Actor
from accesspoint.store.models import Organisation, Participant


@click.group()
def organisations() -> None:
    """The network's customers: organisations and their participant identifiers."""


@organisations.command("create")
@config_option
@click.argument("name")
@click.option("--country", required=True, help="Two-letter ISO 3166 country code, e.g. SE.")
@click.option("--org-number", default=None, help="The organisation's registration number (unique).")
@click.option("--vat-number", default=None)
@click.option("--contact-email", default=None)
@click.option("--participant", "identifiers", multiple=True,
              help="A participant identifier, e.g. 0007:5567321707 (repeatable).")
@click.option("--receiving", is_flag=True,
              help="Switch receiving on for the identifiers (registers them in our SMP, the SML and the Directory).")
def create(config_path: str | None, name: str, country: str, org_number: str | None, vat_number: str | None,
           contact_email: str | None, identifiers: tuple[str, ...], receiving: bool) -> None:
    """Create an organisation; prints its registrations and, last, its id."""
    fields, errors = clean_organisation({"name": name, "country": country, "org_number": org_number,
                                         "vat_number": vat_number, "contact_email": contact_email})
    specs = []
    for text in identifiers:
        identifier, problem = parse_participant(text, "--participant")
        if problem is not None:
            errors.append(problem)
        elif identifier is not None:
            specs.append(ParticipantSpec(identifier, receiving=receiving))
    if receiving and not specs:
        errors.append(FieldError("--receiving", "needs at least one --participant"))
    if errors:
        fail("; ".join(map(str, errors)))
    gateway = load_gateway(config_path, announce=True)
    try:
        organisation_id = enrolment.create_organisation(gateway, fields, specs, Actor.command_line())
    except EnrolmentConflict as exc:
        fail(str(exc))
    with gateway.read() as session:
        for participant in session.scalars(select(Participant).where(Participant.organisation_id == organisation_id)
                                           .order_by(Participant.id)):
            click.echo(_registration_line(RegistrationState.of(participant)))
    click.echo(f"organisation {organisation_id} created; its network token: peppol-ap tokens create --org "
               f"{organisation_id}", err=True)
    click.echo(organisation_id)


@organisations.command("list")
@config_option
def list_organisations(config_path: str | None) -> None:
    """List organisations with their participant identifiers."""
    gateway = load_gateway(config_path, announce=True)
    with gateway.read() as session:
        for organisation in session.scalars(select(Organisation).order_by(Organisation.id)
                                            .options(selectinload(Organisation.participants))):
            click.echo(f"{organisation.id:>5}  {organisation.country}  {organisation.org_number or '-':<16} "
                       f"{organisation.name}")
            for participant in sorted(organisation.participants, key=lambda p: p.id):
                click.echo("       " + _registration_line(RegistrationState.of(participant)))


def _registration_line(state: RegistrationState) -> str:
    if not state.receiving_enabled:
        return f"{state.identifier}: receiving off"
    steps = ", ".join(f"{what} {result.status}" + (f" ({result.error})" if result.error else "")
                      for what, result in (("SMP", state.smp), ("SML", state.sml), ("Directory", state.directory)))
    return f"{state.identifier}: receiving on; {steps}"
