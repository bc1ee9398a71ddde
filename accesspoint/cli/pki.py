"""`peppol-ap pki`: the dev PKI for the local environment and tests."""

import click


@click.group()
def pki() -> None:
    """Create and inspect the local development PKI."""
