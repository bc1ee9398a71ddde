"""`peppol-ap inspect`: explain an AS4 message, receipt or error."""

import click


@click.command()
def inspect() -> None:
    """Explain an AS4 message, receipt or error."""
    raise click.ClickException("not available yet")
