"""`peppol-ap lookup` and `peppol-ap smp`: discovery from the command line."""

import click


@click.command()
def lookup() -> None:
    """Find a participant's access point (SML + SMP)."""
    raise click.ClickException("not available yet")


@click.group()
def smp() -> None:
    """SMP tools."""
