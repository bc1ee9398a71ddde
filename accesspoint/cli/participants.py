"""`peppol-ap participants import FILE.csv`: bulk import of a customer register (see accesspoint.flows.importer)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from accesspoint.cli.common import config_option, fail, load_gateway
from accesspoint.flows.importer import BATCH_SIZE, WORKERS, ImportFileError, Outcome, run_import
from accesspoint.store.audit import Actor

ATTENTION = (Outcome.INVALID, Outcome.FAILED, Outcome.REGISTERED_ELSEWHERE)


@click.group()
def participants() -> None:
    """Organisations and their participant identifiers."""


def _data_rows(path: Path) -> int:
    """Lines after the header, for the progress bar (a quoted field with a line break makes it an estimate)."""
    with path.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


@participants.command("import")
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate every row and report; store and register nothing.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full per-row report as JSON to this file.")
@click.option("--workers", type=click.IntRange(1, 64), default=WORKERS, show_default=True,
              help="SML registrations running at the same time.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=BATCH_SIZE, show_default=True,
              help="Rows stored per transaction.")
def import_file(config_path: str | None, file: Path, dry_run: bool, report_path: Path | None, workers: int,
                batch_size: int) -> None:
    """Import organisations and participant identifiers from a CSV file (UTF-8, header row).

    Columns: org_number, name, country, participant (required), receive (yes/no), vat_number, contact_name,
    contact_email, contact_phone. receive=yes enables
    receiving, which registers the participant in our SMP, the SML and the Peppol Directory.
    Exit status 1 when a row is invalid, failed or registered elsewhere (all are listed).
    """
    gateway = load_gateway(config_path)
    with file.open(encoding="utf-8-sig", newline="") as fh, click.progressbar(
            length=_data_rows(file), label="dry run" if dry_run else "importing", show_pos=True,
            show_eta=True) as bar:
        try:
            report = run_import(gateway, fh, actor=Actor.command_line(), dry_run=dry_run, batch_size=batch_size,
                                workers=workers, progress=bar.update)
        except ImportFileError as exc:
            fail(f"{file}: {exc}")
        except UnicodeDecodeError as exc:
            fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start} of a chunk); save it as UTF-8 and "
                 "import again (rows read before were imported; importing them again is harmless)")
    if report_path is not None:
        report_path.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    for result in report.results:
        if result.outcome in ATTENTION:
            click.echo(f"line {result.line}: {result.outcome}: {result.participant or '-'}: {result.message}")
    counts = ", ".join(f"{name} {count}" for name, count in report.counts().items() if count)
    rate = len(report.results) / report.seconds if report.seconds else 0.0
    click.echo(f"{len(report.results)} rows in {report.seconds:.1f} s ({rate:.0f} rows/s): {counts or 'nothing'}")
    if any(r.outcome in ATTENTION for r in report.results):
        raise SystemExit(1)
