"""The audit log: who did which admin action to what, when, with before/after snapshots (table `audit_log`).

`record` adds the row to the session of the change, so the record commits with the change or not at all: a failed
action leaves none. The doors (admin API, network API, CLI) name the actor and pass it to the flow that makes the
change. Snapshots hold what an admin set and saw, never a secret: no token or token hash, no webhook secret.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from accesspoint.store.models import ApiClient, AuditRecord, Message, Organisation, Participant

# what the audit log calls the things an action changes
ORGANISATION = "organisation"
PARTICIPANT = "participant"
API_TOKEN = "token"  # noqa: S105 (the name of a target type, no secret)
SML = "sml"
IMPORT = "import"
MESSAGE = "message"

# token actions, named here because two doors make them (the CLI and the admin API)
TOKEN_CREATE = "token.create"  # noqa: S105 (an action name, no secret)
TOKEN_REVOKE = "token.revoke"  # noqa: S105

_ORGANISATION_COLUMNS = ("name", "country", "org_number", "vat_number", "contact_name", "contact_email",
                         "contact_phone", "validation_mode")


@dataclass(frozen=True)
class Actor:
    """Who acts: an API token (by name and id, never the token) or a person at the command line."""

    name: str
    api_client_id: int | None = None

    @classmethod
    def of_client(cls, client: ApiClient) -> Actor:
        return cls(client.name, client.id)

    @classmethod
    def command_line(cls) -> Actor:
        return cls(f"cli:{getpass.getuser()}")


def record(session: Session, actor: Actor, action: str, target_type: str, target_id: str | int | None, *,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> AuditRecord:
    """Add one audit record to the transaction of the change it describes."""
    entry = AuditRecord(actor=actor.name, api_client_id=actor.api_client_id, action=action, target_type=target_type,
                        target_id=None if target_id is None else str(target_id), before=before, after=after)
    session.add(entry)
    return entry


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def organisation_snapshot(organisation: Organisation) -> dict[str, Any]:
    body: dict[str, Any] = {"id": organisation.id}
    body.update({name: getattr(organisation, name) for name in _ORGANISATION_COLUMNS})
    body["participants"] = sorted(p.uri for p in organisation.participants)
    return body


def participant_snapshot(participant: Participant) -> dict[str, Any]:
    return {
        "id": participant.id,
        "organisation_id": participant.organisation_id,
        "identifier": participant.uri,
        "receiving_enabled": participant.receiving_enabled,
        "document_types": sorted([d.document_type, d.process] for d in participant.document_types),
        "smp_status": participant.smp_status,
        "sml_status": participant.sml_status,
        "directory_status": participant.directory_status,
    }


def token_snapshot(client: ApiClient) -> dict[str, Any]:
    """The token's metadata; `token_prefix` is the short public prefix that listings show, not the token."""
    return {"id": client.id, "name": client.name, "role": client.role, "organisation_id": client.organisation_id,
            "scopes": list(client.scopes), "token_prefix": client.token_prefix, "expires_at": _iso(client.expires_at),
            "revoked_at": _iso(client.revoked_at)}


def message_snapshot(message: Message) -> dict[str, Any]:
    return {"id": message.id, "direction": message.direction, "state": message.state,
            "attempts": message.attempts, "error_code": message.error_code,
            "next_attempt_at": _iso(message.next_attempt_at), "deadline_at": _iso(message.deadline_at)}
