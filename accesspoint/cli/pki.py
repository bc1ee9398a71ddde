"""`peppol-ap pki`: the dev PKI for the local environment and tests, and certificate checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from accesspoint.cli.common import fail
from base.egress import EgressPolicy
from certs.anchors import anchors_from_certificates, peppol_anchors
from certs.devpki import DEFAULT_PASSWORD, DevPki, DevPkiError, init_pki, issue_leaf, load_pki
from certs.fetch import http_fetcher
from certs.keystore import KeystoreError, load_certificates
from certs.revocation import RevocationChecker
from certs.validation import CertificateValidator, Purpose


@click.group()
def pki() -> None:
    """Create the local development PKI and check certificates against Peppol trust."""


def _keytool_lines(dev: DevPki) -> list[str]:
    shown = dev.password if dev.password == DEFAULT_PASSWORD else "<password>"
    return [
        f"keytool -importcert -noprompt -storetype PKCS12 -keystore truststore.p12 -storepass {shown} "
        f"-alias {alias} -file {path}"
        for alias, path in (("local-dev-root-ca", dev.root_ca), ("local-dev-ap-ca", dev.ap_ca),
                            ("local-dev-smp-ca", dev.smp_ca))
    ]


@pki.command("init")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to create the PKI in (created if missing).")
@click.option("--seat-id", default="POP000001", show_default=True, help="CN of the AP certificate (seat ID).")
@click.option("--smp-seat-id", default="POP000001", show_default=True, help="CN of the SMP certificate.")
@click.option("--crl-url", help="CRL distribution point put into the leaves (e.g. a loopback URL).")
@click.option("--ocsp-url", help="OCSP responder URL (AIA) put into the leaves.")
@click.option("--password", default=DEFAULT_PASSWORD, show_default=True, help="Password of the PKCS#12 files.")
@click.option("--days", default=730, show_default=True, type=click.IntRange(min=1), help="Validity of the leaves.")
@click.option("--force", is_flag=True, help="Replace an existing dev PKI in that directory.")
def init(out_dir: Path, seat_id: str, smp_seat_id: str, crl_url: str | None, ocsp_url: str | None, password: str,
         days: int, force: bool) -> None:
    """Create a local root CA, AP CA and SMP CA with Peppol-shaped AP and SMP certificates.

    FOR LOCAL TESTING ONLY: nothing here is trusted in the test or production environments.
    """
    try:
        dev = init_pki(out_dir, ap_seat_id=seat_id, smp_seat_id=smp_seat_id, crl_url=crl_url, ocsp_url=ocsp_url,
                       password=password, days=days, force=force)
    except DevPkiError as exc:
        fail(str(exc))
    rows = [
        ("root CA", dev.root_ca, dev.root_ca_key),
        ("AP CA", dev.ap_ca, dev.ap_ca_key),
        ("SMP CA", dev.smp_ca, dev.smp_ca_key),
        (f"AP {seat_id}", dev.ap_cert, dev.ap_key),
        (f"SMP {smp_seat_id}", dev.smp_cert, dev.smp_key),
    ]
    click.echo(f"Created a dev PKI in {dev.directory} (FOR LOCAL TESTING ONLY)")
    for label, cert, key in rows:
        click.echo(f"  {label:<16} {cert.name:<16} key {key.name}")
    click.echo(f"  {'AP keystore':<16} {dev.ap_p12.name:<16} PKCS#12: key + certificate + chain, alias 'ap'")
    click.echo(f"  {'SMP keystore':<16} {dev.smp_p12.name:<16} PKCS#12: key + certificate + chain, alias 'smp'")
    click.echo(f"  {'trust (PEM)':<16} {dev.truststore_pem.name:<16} root + AP CA + SMP CA")
    click.echo(f"  {'trust (Java)':<16} {dev.truststore_p12.name:<16} PKCS#12 truststore, same password")
    click.echo("A Java peer can use the .p12 files directly; to build its truststore yourself instead:")
    for line in _keytool_lines(dev):
        click.echo(f"  {line}")


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--at: not an ISO 8601 time: {value!r} (e.g. 2026-06-01T12:00:00Z)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pki.command("verify")
@click.argument("cert_file", metavar="CERT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--purpose", required=True, type=click.Choice([p.value for p in Purpose]),
              help="What the certificate is to be used for.")
@click.option("--env", "environment", type=click.Choice(["test", "production"]), default="test", show_default=True,
              help="Whose shipped Peppol G3 CAs to trust.")
@click.option("--trust", "trust_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PEM/DER file of CAs to trust instead of the shipped ones (e.g. a dev PKI's truststore.pem). "
                   "Issuing CAs whose CN names a SERVICE METADATA PUBLISHER (or SMP) CA count as SMP CAs, the "
                   "others as AP CAs; self-signed ones are roots. Repeatable.")
@click.option("--at", "at_text", help="Check at this ISO 8601 time instead of now (no zone = UTC). Revocation "
              "servers only answer for now, so with a past time add --no-revocation.")
@click.option("--no-revocation", is_flag=True, help="Skip CRL/OCSP (the verdict says so).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def verify(cert_file: Path, purpose: str, environment: str, trust_files: tuple[Path, ...], at_text: str | None,
           no_revocation: bool, as_json: bool) -> None:
    """Check CERT (the first certificate in a PEM or DER file) as a Peppol certificate.

    Exit status 0 only when the certificate is valid for PURPOSE; 1 when it is not.
    """
    at = _parse_time(at_text)
    wanted = Purpose(purpose)
    try:
        cert = load_certificates(cert_file)[0]
        if trust_files:
            anchors = anchors_from_certificates([c for f in trust_files for c in load_certificates(f)])
        else:
            anchors = peppol_anchors(environment)  # type: ignore[arg-type]
    except KeystoreError as exc:
        fail(str(exc))
    # CRL/OCSP URLs from a certificate under a PKI of one's own (--trust, e.g. the dev PKI) may be on loopback, as in
    # the local environment; under the shipped Peppol CAs only public addresses are asked
    policy = EgressPolicy.from_settings((), local=bool(trust_files))
    checker = None if no_revocation else RevocationChecker(http_fetcher(policy))
    verdict = CertificateValidator(anchors, checker).validate(cert, wanted, at)
    if as_json:
        click.echo(json.dumps(verdict.to_dict(), indent=2))
    else:
        click.echo(f"{'VALID' if verdict.valid else 'INVALID (' + str(verdict.reason) + ')'} for {wanted.value}")
        click.echo(f"subject     {verdict.subject}")
        click.echo(f"issuer      {verdict.issuer}")
        if verdict.not_before and verdict.not_after:
            click.echo(f"validity    {verdict.not_before:%Y-%m-%d %H:%M} .. {verdict.not_after:%Y-%m-%d %H:%M} UTC")
        click.echo(f"detail      {verdict.detail}")
    raise SystemExit(0 if verdict.valid else 1)


@pki.command("issue")
@click.option("--pki", "pki_dir", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The dev PKI to issue from (e.g. var/pki of a local gateway).")
@click.option("--role", type=click.Choice(["ap", "smp"]), default="ap", show_default=True,
              help="ap: from the dev AP CA (for AS4); smp: from the dev SMP CA (signs SMP answers).")
@click.option("--cn", required=True, help="CN of the new certificate: a seat ID such as POP000002.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the files (default: <pki>/leaves).")
def issue(pki_dir: Path, role: str, cn: str, out_dir: Path | None) -> None:
    """Issue another Peppol-shaped certificate from a dev PKI, e.g. for a second local gateway."""
    try:
        leaf = issue_leaf(load_pki(pki_dir), role=role, cn=cn, out_dir=out_dir)  # type: ignore[arg-type]
    except (DevPkiError, ValueError) as exc:
        fail(str(exc))
    click.echo(f"{role} certificate CN={cn}, valid until {leaf.certificate.not_valid_after_utc:%Y-%m-%d}")
    click.echo(f"  PKCS#12 (key + chain, password of the PKI): {leaf.p12}")
    click.echo(f"  key {leaf.key_pem}  certificate {leaf.cert_pem}")
