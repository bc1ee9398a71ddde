"""`peppol-ap`: the gateway's command line. Each area's commands live in their own module and are registered
here; they share accesspoint.cli.common, never this module, so importing them at the top makes no cycle."""

from __future__ import annotations

import json
import sys

import click

from accesspoint import __version__
from accesspoint.cli import (
    discovery,
    inspect,
    localsml,
    organisations,
    participants,
    pki,
    retention,
    rules,
    send,
    tokens,
    validate,
    worker,
)
from accesspoint.cli.common import config_option, fail_config
from accesspoint.cli.db import db
from accesspoint.config import ConfigError, key_material, load_config
from accesspoint.server import run
from accesspoint.supervisor import run_all


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="peppol-ap")
def cli() -> None:
    """Peppol Access Point gateway: AS4 messaging, discovery, registrations."""


@cli.command()
@config_option
@click.option("--host", help="Address to listen on (overrides server.host).")
@click.option("--port", type=int, help="TCP port (overrides server.port).")
@click.option("--workers", type=int, help="gunicorn worker processes (overrides server.workers; 0: one per core).")
def serve(config_path: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Start the web server alone (gunicorn) on the configured address: for production deployments, where
    `peppol-ap worker` runs as its own service. `peppol-ap run` starts everything at once."""
    overrides = {"PEPPOL_AP_SERVER__HOST": host, "PEPPOL_AP_SERVER__PORT": str(port) if port else None,
                 "PEPPOL_AP_SERVER__WORKERS": None if workers is None else str(workers)}
    try:
        run(config_path, {k: v for k, v in overrides.items() if v})
    except ConfigError as exc:
        fail_config(exc)


@cli.command("run")
@config_option
@click.option("--port", type=int, help="TCP port of the web server (overrides server.port).")
def run_command(config_path: str | None, port: int | None) -> None:
    """Start the whole gateway in one supervised process tree: the web server, the background worker and, in the
    local environment, the local SML with its DNS server (our SMP registered in it). Ctrl-C stops all of it."""
    overrides = {"PEPPOL_AP_SERVER__PORT": str(port)} if port else {}
    try:
        code = run_all(config_path, overrides)
    except ConfigError as exc:
        fail_config(exc)
    sys.exit(code)


@cli.group()
def config() -> None:
    """Inspect and check the configuration."""


@config.command("check")
@config_option
def config_check(config_path: str | None) -> None:
    """Validate the configuration and our key material, then print a summary; every problem is one line on
    stderr naming the key, and the exit status is 2."""
    try:
        cfg = load_config(config_path)
        material = key_material(cfg)
    except ConfigError as exc:
        fail_config(exc)
    click.echo(f"environment   {cfg.environment}")
    click.echo(f"sources       {', '.join(cfg.sources)}")
    click.echo(f"certificate   {material.certificate.subject.rfc4514_string()}")
    click.echo(f"valid until   {material.certificate.not_valid_after_utc:%Y-%m-%d}")
    click.echo(f"database      {cfg.database_url}")
    click.echo("configuration OK")


@config.command("show")
@config_option
def config_show(config_path: str | None) -> None:
    """Print the effective configuration as JSON (secrets masked)."""
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        fail_config(exc)
    click.echo(json.dumps(cfg.redacted(), indent=2))


for command in (pki.pki, inspect.inspect, discovery.lookup, discovery.smp, db, tokens.tokens, worker.worker,
                localsml.localsml, organisations.organisations, participants.participants, send.send,
                retention.retention, rules.rules, validate.validate):
    cli.add_command(command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
