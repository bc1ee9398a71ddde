"""The admin API's organisations, participants, registrations, imports and our SMP's SML record.

The field rules are those of accesspoint.flows.organisations (shared with the CSV import): each field's validator
runs that rule, so the API and the import refuse the same values with the same words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
    field_validator,
)

from accesspoint.flows.importer import Outcome
from accesspoint.flows.organisations import ORGANISATION_FIELDS, clean_organisation, parse_participant
from accesspoint.store.models import RegistrationStatus
from accesspoint.web.schemas.common import ListQuery, Page, Query, Schema, model_examples, page_examples
from accesspoint.web.schemas.messages import BILLING, INVOICE
from smp.identifiers import DocumentTypeId, IdentifierError, ParticipantId, ProcessId

PARTICIPANT = "iso6523-actorid-upis::0007:5567321707"


def _organisation_rule(name: str) -> AfterValidator:
    def check(value: str | None) -> str | None:
        clean, errors = clean_organisation({name: value}, partial=True)
        if errors:
            raise ValueError(errors[0].message)
        return clean[name]

    return AfterValidator(check)


def _limited(name: str) -> Any:
    return Annotated[str, Field(max_length=ORGANISATION_FIELDS[name][0])]


def _participant(value: Any) -> ParticipantId:
    identifier, problem = parse_participant(value)
    if problem is not None or identifier is None:
        raise ValueError(problem.message if problem else "is required")
    return identifier


def _identifier(kind: type[DocumentTypeId] | type[ProcessId]) -> AfterValidator:
    def check(value: str) -> str:
        try:
            return kind.parse(value).uri
        except IdentifierError as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(check)


# a participant identifier under the strict Peppol rules (known ICD, 0007/0088 check digits), in either spelling
PeppolParticipant = Annotated[ParticipantId, PlainValidator(_participant), WithJsonSchema({
    "type": "string", "maxLength": 300, "examples": ["0007:5567321707", PARTICIPANT],
    "description": "`ICD:id` or `iso6523-actorid-upis::ICD:id`, checked by the Peppol rules (check digits)"})]
Name = Annotated[_limited("name"), _organisation_rule("name"),
                 Field(description="the organisation's name", examples=["Acme AB"])]
Country = Annotated[str, _organisation_rule("country"),
                    Field(max_length=10, description="ISO 3166 two-letter code", examples=["SE"])]


def _optional(name: str, description: str, example: str) -> Any:
    return Annotated[_limited(name) | None, _organisation_rule(name),
                     Field(description=description, examples=[example])]


OrgNumber = _optional("org_number", "the national organisation number", "5567321707")
VatNumber = _optional("vat_number", "the VAT number", "SE556732170701")
ContactName = _optional("contact_name", "who to contact about Peppol", "Anna Svensson")
ContactEmail = _optional("contact_email", "an email address", "peppol@acme.example")
ContactPhone = _optional("contact_phone", "a phone number", "+46 8 123 456")


class DocumentType(Schema):
    """A document type and process a participant receives (what our SMP publishes for it)"""

    model_config = ConfigDict(extra="forbid")

    document_type: Annotated[str, _identifier(DocumentTypeId)] = Field(max_length=1000, examples=[INVOICE])
    process: Annotated[str, _identifier(ProcessId)] = Field(max_length=1000, examples=[BILLING])


class ParticipantRequest(BaseModel):
    """A participant identifier to add, what it receives (default: Peppol BIS Billing invoices and credit notes)
    and whether receiving is switched on now (registers in our SMP, the SML and the Directory)"""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"identifier": "0007:5567321707", "receiving": True},
        {"identifier": PARTICIPANT, "document_types": [{"document_type": INVOICE, "process": BILLING}]},
    ]})

    identifier: PeppolParticipant
    document_types: list[DocumentType] | None = Field(None, max_length=200)
    receiving: StrictBool = False


ValidationModeChoice = Literal["refuse", "warn"]
VALIDATION_MODE_DESCRIPTION = ("what a fatal BIS validation finding does to a submission: `refuse` (422, nothing is "
                               "sent; the rule for a sending access point) or `warn` (for a migration period: sent, "
                               "and the answer says so)")


class OrganisationUpdate(BaseModel):
    """The fields to change; the Peppol Directory re-reads the business card of a receiving participant"""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Acme Group AB", "contact_email": "peppol@acme.example"}]})

    name: Name | None = None
    country: Country | None = None
    org_number: OrgNumber = None
    vat_number: VatNumber = None
    contact_name: ContactName = None
    contact_email: ContactEmail = None
    contact_phone: ContactPhone = None
    validation_mode: ValidationModeChoice | None = Field(None, description=VALIDATION_MODE_DESCRIPTION)

    @field_validator("name", "country", "validation_mode")
    @classmethod
    def _required_stays_set(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("must not be empty")
        return value


class OrganisationRequest(BaseModel):
    """A new organisation, optionally with its participants (registered in one call)"""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Acme AB", "country": "SE", "org_number": "5567321707", "contact_email": "peppol@acme.example",
         "participants": [{"identifier": "0007:5567321707", "receiving": True}]},
        {"name": "Globex AS", "country": "NO"},
    ]})

    name: Name
    country: Country
    org_number: OrgNumber = None
    vat_number: VatNumber = None
    contact_name: ContactName = None
    contact_email: ContactEmail = None
    contact_phone: ContactPhone = None
    validation_mode: ValidationModeChoice = Field("refuse", description=VALIDATION_MODE_DESCRIPTION)
    participants: list[ParticipantRequest] = Field(default_factory=list, max_length=1000)


class OrganisationQuery(ListQuery):
    org_number: str | None = Field(None, max_length=64, description="only the organisation with this number",
                                   examples=["5567321707"])


class ParticipantQuery(Query):
    identifier: str = Field(max_length=300, description="`scheme::value` or `ICD:id`", examples=["0007:5567321707"])


class ForceQuery(Query):
    force: bool = Field(False, description="delete even when the SML or Directory removal failed")


class Step(Schema):
    status: RegistrationStatus
    error: str | None


class Registration(Schema):
    """Where the participant is registered: our SMP, the SML, the Peppol Directory; each step's error says what
    to do"""

    model_config = model_examples({
        "participant_id": 12, "identifier": PARTICIPANT, "receiving_enabled": True,
        "smp": {"status": "registered", "error": None}, "sml": {"status": "registered", "error": None},
        "directory": {"status": "pending", "error": None}, "registered_at": "2026-11-21T09:00:00Z",
    })

    participant_id: int
    identifier: str
    receiving_enabled: bool
    smp: Step
    sml: Step
    directory: Step
    registered_at: datetime | None


class Participant(Schema):
    """A participant identifier of an organisation, what it receives, and its registration"""

    model_config = model_examples({
        "id": 12, "organisation_id": 1, "identifier": PARTICIPANT, "receiving_enabled": False,
        "document_types": [{"document_type": INVOICE, "process": BILLING}],
        "registration": {"participant_id": 12, "identifier": PARTICIPANT, "receiving_enabled": False,
                         "smp": {"status": "unregistered", "error": None},
                         "sml": {"status": "unregistered", "error": None},
                         "directory": {"status": "unregistered", "error": None}, "registered_at": None},
        "created_at": "2026-11-21T09:00:00Z",
    })

    id: int
    organisation_id: int
    identifier: str
    receiving_enabled: bool
    document_types: list[DocumentType]
    registration: Registration
    created_at: datetime


class ParticipantPage(Page):
    model_config = page_examples(Participant, "/admin/api/organisations/1/participants")

    items: list[Participant]


class Organisation(Schema):
    """An organisation of the operator's network with its participants"""

    model_config = model_examples({
        "id": 1, "name": "Acme AB", "country": "SE", "org_number": "5567321707", "vat_number": None,
        "contact_name": None, "contact_email": "peppol@acme.example", "contact_phone": None,
        "validation_mode": "refuse", "participants": [],
        "created_at": "2026-11-21T09:00:00Z", "updated_at": "2026-11-21T09:00:00Z",
    })

    id: int
    name: str
    country: str
    org_number: str | None
    vat_number: str | None
    contact_name: str | None
    contact_email: str | None
    contact_phone: str | None
    validation_mode: ValidationModeChoice = Field(description=VALIDATION_MODE_DESCRIPTION)
    participants: list[Participant]
    created_at: datetime
    updated_at: datetime


class OrganisationPage(Page):
    model_config = page_examples(Organisation, "/admin/api/organisations")

    items: list[Organisation]


class DocumentTypes(Schema):
    """The document types and processes the participant receives"""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True,
                              json_schema_extra={"examples": [{"document_types": [
                                  {"document_type": INVOICE, "process": BILLING}]}]})

    document_types: list[DocumentType] = Field(max_length=200)


class Receiving(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True}]})

    enabled: StrictBool = Field(description="true to receive (registers), false to stop (unregisters)")


class MigrationKey(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"key": "Abc-123_xyz+789"}]})

    key: str = Field(min_length=1, max_length=100, description="the migration key the current provider gave "
                                                               "the customer")


class ImportQuery(Query):
    dry_run: bool = Field(False, description="check every row and report, change nothing")


class ImportRow(Schema):
    line: int
    outcome: Outcome
    participant: str | None
    org_number: str | None
    message: str | None


class ImportReport(Schema):
    """What the import did (or would do) with each row"""

    model_config = model_examples({
        "dry_run": True, "rows": 1, "seconds": 0.012, "counts": {"valid": 1},
        "results": [{"line": 2, "outcome": "valid", "participant": PARTICIPANT, "org_number": "5567321707",
                     "message": None}],
    })

    dry_run: bool
    rows: int
    seconds: float
    counts: dict[str, int]
    results: list[ImportRow]


class SmlRecord(Schema):
    """Our SMP's record in the SML: where the NAPTR records of our participants point"""

    model_config = model_examples({
        "smp_id": "PEPPOL-AP-EXAMPLE", "logical_address": "https://smp.ap.example",
        "physical_address": "192.0.2.10", "expected_logical_address": "https://smp.ap.example",
    })

    smp_id: str
    logical_address: str | None
    physical_address: str | None
    expected_logical_address: str = Field(description="gateway.smp_url: what the logical address should be")
