"""`peppol-ap retention run [--dry-run]`: apply the [retention] periods now (the worker does it every
retention.interval_minutes), or list what would be removed."""

from __future__ import annotations

import click

from accesspoint.cli.common import config_option, load_gateway
from accesspoint.flows.retention import run


@click.group()
def retention() -> None:
    """Remove payloads and old messages past their retention periods ([retention] settings)."""


@retention.command("run")
@config_option
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
def run_command(config_path: str | None, dry_run: bool) -> None:
    """Apply retention once, whatever retention.enabled and retention.dry_run say."""
    gateway = load_gateway(config_path)
    report = run(gateway, dry_run=dry_run)
    for candidate in report.candidates:
        click.echo(f"would remove {candidate.kind:<17} {candidate.message_id}  {candidate.direction} "
                   f"{candidate.state} since {candidate.since:%Y-%m-%d %H:%M}")
    counts = ", ".join(f"{kind} {count}" for kind, count in report.removed.items() if count) or "nothing"
    click.echo(f"{'would remove' if dry_run else 'removed'}: {counts}")
