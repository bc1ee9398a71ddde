"""`peppol-ap send FILE [--to PARTICIPANT] [--wait]`: queue a document through the same checks and pipeline as
`POST /api/v1/outbound`, and optionally follow it to its final state."""

from __future__ import annotations

import time
from pathlib import Path

import click

from accesspoint.cli.common import config_option, fail, load_gateway
from accesspoint.flows.sending import send_one
from accesspoint.flows.submission import SubmissionError, ValidationRefused, submit
from accesspoint.gateway import Gateway
from accesspoint.store.models import Message, MessageState
from accesspoint.store.types import utcnow
from smp.identifiers import DocumentTypeId, ParticipantId

POLL_SECONDS = 0.5
MAX_SLEEP_SECONDS = 5.0


def _load(gateway: Gateway, message_id: str) -> Message:
    with gateway.read() as session:
        message = session.get(Message, message_id)
        assert message is not None
        _ = message.attempt_log  # loaded before the session closes
        return message


def _follow(gateway: Gateway, message_id: str) -> Message:
    """Drive the message until it is sent or failed, printing each attempt; the worker may do the work instead."""
    shown = 0
    state = ""
    while True:
        send_one(gateway, message_id)  # does nothing when it is not due or a worker holds it
        message = _load(gateway, message_id)
        for attempt in message.attempt_log[shown:]:
            if attempt.finished_at is None:
                break
            where = f" to {attempt.endpoint_url}" if attempt.endpoint_url else ""
            result = "sent" if attempt.error_code is None else f"{attempt.outcome}: {attempt.error_reason}"
            click.echo(f"attempt {attempt.number}{where}: {result}")
            shown += 1
        if message.state != state:
            state = message.state
            if state == MessageState.RETRYING and message.next_attempt_at is not None:
                click.echo(f"retrying at {message.next_attempt_at:%H:%M:%S} UTC")
        if state in (MessageState.SENT, MessageState.FAILED):
            return message
        wait = POLL_SECONDS
        if message.state == MessageState.RETRYING and message.next_attempt_at is not None:
            wait = min(MAX_SLEEP_SECONDS, max(POLL_SECONDS, (message.next_attempt_at - utcnow()).total_seconds()))
        time.sleep(wait)


def _summary(message: Message) -> str:
    """`sender -> receiver (document)`, the participants without their scheme."""
    doctype = DocumentTypeId.parse(message.document_type)
    return (f"{ParticipantId.parse(message.sender).value} -> {ParticipantId.parse(message.receiver).value} "
            f"({doctype.local_name or doctype.value})")


@click.command()
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "receiver", metavar="PARTICIPANT",
              help="Send a UBL document to this participant (e.g. 0007:5567321707) instead of its customer.")
@click.option("--wait", is_flag=True, help="Send now and follow the message until it is sent or failed.")
def send(config_path: str | None, file: Path, receiver: str | None, wait: bool) -> None:
    """Queue FILE (a UBL invoice or credit note, or a complete SBD) for its Peppol receiver."""
    gateway = load_gateway(config_path)
    try:
        with file.open("rb") as source:
            message = submit(gateway, source, declared_size=file.stat().st_size, receiver=receiver).message
    except ValidationRefused as exc:
        for finding in exc.report.findings:  # as `peppol-ap validate` prints them
            click.echo(f"{file}:{finding.line or 0}: {finding.flag} {finding.rule_id} {finding.message} "
                       f"({finding.location})", err=True)
        fail(f"{file}: {exc.field}: {exc.detail}", code=1)
    except SubmissionError as exc:
        fail(f"{file}: {exc.field}: {exc.detail}", code=1)
    click.echo(f"queued {message.id}: {_summary(message)}")
    if message.validation and message.validation.get("warning"):
        click.echo(f"peppol-ap: warning: {message.validation['warning']}", err=True)
    if not wait:
        click.echo("a running `peppol-ap worker` sends it; follow it with GET /api/v1/outbound/" + message.id)
        return
    final = _follow(gateway, message.id)
    if final.state == MessageState.SENT:
        click.echo(f"sent to {final.peer_ap_cn} ({final.peer_endpoint_url}); AS4 MessageId {final.as4_message_id}; "
                   "receipt verified and stored")
        return
    click.echo(f"failed: {final.error_reason}", err=True)
    if final.error_hint:
        click.echo(f"hint: {final.error_hint}", err=True)
    raise SystemExit(1)
