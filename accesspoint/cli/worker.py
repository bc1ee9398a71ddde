"""`peppol-ap worker`: run the background tasks (sending, webhook deliveries)."""

from __future__ import annotations

import signal
import threading

import click

from accesspoint.cli.common import config_option, load_gateway
from accesspoint.logs import setup_logging
from accesspoint.worker import run_worker


@click.command()
@config_option
@click.option("--once", is_flag=True, help="Run every task once and exit (for cron and tests).")
def worker(config_path: str | None, once: bool) -> None:
    """Process outbound messages and webhook deliveries until stopped (SIGINT/SIGTERM)."""
    gateway = load_gateway(config_path)
    setup_logging(gateway.config.log.level, gateway.config.log.format)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    handled = run_worker(gateway, once=once, stop=stop)
    if once:
        click.echo(f"handled {handled} item(s)")
