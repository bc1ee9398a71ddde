"""`peppol-ap rules install|list`: the official BIS validation artefacts in the rules directory
(accesspoint.adapters.rules)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click

from accesspoint.adapters.rules import RulesDirectory, RulesError, install
from accesspoint.cli.common import config_option, fail, fail_config
from accesspoint.config import Config, ConfigError, load_config
from accesspoint.core.validation import newest_in_force, release_key


def _config(config_path: str | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail_config(exc)


@click.group()
def rules() -> None:
    """The official Peppol BIS validation rules: install them, list what is installed."""


@rules.command("install")
@config_option
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path),
              help="Install from this phive-rules-peppol / ph-ubl21 / ph-xsds jar, a directory holding them (a Maven "
                   "repository will do), or an already installed rules directory, instead of fetching with mvn.")
@click.option("--accept-unknown", is_flag=True,
              help="Install a jar whose SHA-256 is not the pinned one (another version, or a repackaged jar); it is "
                   "recorded as unpinned in the manifest. Without it such a jar is refused.")
def install_command(config_path: str | None, source: Path | None, accept_unknown: bool) -> None:
    """Install the validation artefacts into validation.rules_dir. Without --from they are fetched with Maven (mvn)
    at the pinned versions and their SHA-256 checked; when those are installed already, nothing is done."""
    cfg = _config(config_path)
    started = time.monotonic()
    try:
        result = install(cfg.rules_dir, source, accept_unknown=accept_unknown)
    except RulesError as exc:
        fail(f"rules install: {exc}")
    if result.skipped:
        click.echo(f"rules already installed in {cfg.rules_dir} (pinned versions)")
        return
    for entry in result.installed:
        pin = "" if entry.pinned else "  (not the pinned checksum: accepted with --accept-unknown)"
        click.echo(f"installed {entry.artifact} {entry.version} sha256 {entry.sha256}{pin}")
    click.echo(f"rules installed in {cfg.rules_dir} in {time.monotonic() - started:.1f} s")


@rules.command("list")
@config_option
def list_command(config_path: str | None) -> None:
    """Show the installed rule releases with their mandatory dates, and which one is in force today."""
    cfg = _config(config_path)
    directory = RulesDirectory(cfg.rules_dir)
    installed = directory.releases()
    today = datetime.now(UTC).date()
    dates = cfg.validation.release_dates
    in_force = cfg.validation.release or newest_in_force(dates, today, installed)
    by_date = newest_in_force(dates, today)
    click.echo(f"rules directory {cfg.rules_dir}")
    if not installed:
        click.echo("no releases installed: run `peppol-ap rules install`")
    for release in sorted(installed, key=release_key):
        mandatory = dates.get(release)
        when = f"mandatory from {mandatory.isoformat()}" if mandatory else "no mandatory date configured"
        mark = "  <- in force" + (" (validation.release)" if cfg.validation.release else "") \
            if release == in_force else ""
        click.echo(f"  {release:<10} {when}{mark}")
    if by_date and by_date not in installed:
        click.echo(f"warning: release {by_date} is mandatory since {dates[by_date].isoformat()} but not installed")
    for entry in directory.manifest():
        click.echo(f"artifact {entry.artifact} {entry.version} sha256 {entry.sha256} installed {entry.installed_at}"
                   + ("" if entry.pinned else " (unpinned)"))
    for missing in directory.missing():
        click.echo(f"missing artifact {missing}: run `peppol-ap rules install`")
