"""Pieces every CLI module shares (kept apart from main.py, which imports the command modules)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="TOML file layered on conf/default.toml."
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop with one clear line on stderr."""
    click.echo(f"peppol-ap: {message}", err=True)
    sys.exit(code)


def load_gateway(config_path: str | None):  # type: ignore[no-untyped-def]
    """The configured Gateway, or a one-line configuration error."""
    from accesspoint.config import ConfigError, load_config
    from accesspoint.gateway import build_gateway

    try:
        return build_gateway(load_config(config_path))
    except ConfigError as exc:
        fail(f"configuration error: {exc}")
