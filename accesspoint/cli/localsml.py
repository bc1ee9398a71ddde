"""`peppol-ap localsml`: the local SML and its DNS zone, so local gateways can register and find each other."""

from __future__ import annotations

from pathlib import Path

import click

from smp.localsml import main as run_local_sml

DEFAULT_PORT = 8700
DEFAULT_DNS_PORT = 8553


@click.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port of the SML's SOAP interface.")
@click.option("--dns-port", default=DEFAULT_DNS_PORT, show_default=True, help="Port of the NAPTR DNS server.")
@click.option("--store", default=Path("var/localsml/zone.sqlite"), show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="SQLite file with the SML state and records.")
@click.option("--zone", default="local.peppol.test", show_default=True, help="The SML's DNS zone.")
def localsml(port: int, dns_port: int, store: Path, zone: str) -> None:
    """Run a local SML (the Peppol SML's SOAP interface) and a DNS server publishing its NAPTR records, on
    127.0.0.1. `conf/local-network.toml` points a local gateway at these defaults."""
    raise SystemExit(run_local_sml(["--port", str(port), "--dns-port", str(dns_port), "--store", str(store),
                                    "--zone", zone]))
