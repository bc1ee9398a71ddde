"""Pieces every CLI module shares (kept apart from main.py, which imports the command modules)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from accesspoint.config import ConfigError, load_config
from accesspoint.gateway import Gateway, build_gateway
from accesspoint.store.database import display_url

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="TOML file layered on conf/default.toml."
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop with one clear line on stderr."""
    click.echo(f"peppol-ap: {message}", err=True)
    sys.exit(code)


def fail_config(exc: ConfigError, what: str = "configuration error") -> NoReturn:
    """Stop with every configuration problem on stderr, one line each."""
    for problem in exc.problems:
        click.echo(f"peppol-ap: {what}: {problem}", err=True)
    sys.exit(2)


def load_gateway(config_path: str | None, *, announce: bool = False) -> Gateway:
    """The configured Gateway, or the configuration problems. With `announce`, says on stderr which gateway and
    database the command acts on (commands that change what a gateway knows: with two local gateways side by
    side the environment decides, and a token made in the other one's database is a puzzle)."""
    try:
        gateway = build_gateway(load_config(config_path))
    except ConfigError as exc:
        fail_config(exc)
    if announce:
        click.echo(f"peppol-ap: gateway {gateway.public_url}, database {display_url(gateway.config.database_url)}",
                   err=True)
    return gateway
