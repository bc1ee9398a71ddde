"""`peppol-ap inspect`: explain an AS4 message, receipt or error, step by step (accesspoint.core.peppol.inspection)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from accesspoint.cli.common import fail, fail_config
from accesspoint.config import ConfigError, load_config, trust_anchors
from accesspoint.core import InboundLimits, human_lines, inspect_message
from accesspoint.flows.receiving import offline_checks
from base.egress import EgressPolicy
from certs.anchors import TrustAnchors, anchors_from_certificates, peppol_anchors
from certs.fetch import http_fetcher
from certs.keystore import KeyMaterial, KeystoreError, load_certificates, load_pem, load_pkcs12
from certs.revocation import RevocationChecker
from certs.validation import CertificateValidator


def _parse_time(value: str | None) -> datetime:
    """--at, or now: the core reads no clock, so the edge passes the time."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--at: not an ISO 8601 time: {value!r} (e.g. 2026-06-01T12:00:00Z)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _load_key(key_file: Path, password: str | None, cert_file: Path | None) -> KeyMaterial:
    """A PKCS#12 file, or a PEM private key whose certificate comes from --cert."""
    try:
        if key_file.read_bytes()[:64].lstrip().startswith(b"-----BEGIN"):
            if cert_file is None:
                fail(f"--key {key_file} is a PEM private key; give its certificate with --cert")
            return load_pem(key_file, cert_file, None, password)
        return load_pkcs12(key_file, password)
    except OSError as exc:
        fail(f"--key {key_file}: cannot be read: {exc.strerror}")
    except KeystoreError as exc:
        fail(f"--key: {exc}")


def _anchors(trust_files: tuple[Path, ...], environment: str | None, config_path: str | None) -> TrustAnchors:
    """--trust files, else --env's shipped anchors, else the configured environment's anchors."""
    try:
        if trust_files:
            return anchors_from_certificates([c for f in trust_files for c in load_certificates(f)])
    except KeystoreError as exc:
        fail(f"--trust: {exc}")
    if environment is not None:
        return peppol_anchors(environment)  # type: ignore[arg-type]
    what = "configuration error (needed for the default trust anchors; or give --env/--trust)"
    try:
        return trust_anchors(load_config(config_path))
    except ConfigError as exc:
        fail_config(exc, what)
    except KeystoreError as exc:
        fail(f"{what}: {exc}")


@click.command()
@click.argument("message_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--content-type", help="HTTP Content-Type of FILE when it is a raw body without HTTP headers "
              "(default: plain SOAP if FILE starts with '<', else FILE starts with HTTP headers like an .as4in dump).")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Our key to decrypt with: a PKCS#12 file (with --key-password) or a PEM private key (with --cert). "
                   "Repeatable: every key is tried.", multiple=True)
@click.option("--key-password", help="Password of the PKCS#12 file or of the encrypted PEM key.")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Certificate (PEM) belonging to a PEM --key.")
@click.option("--trust", "trust_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM/DER file of CAs to trust for the signer certificate (e.g. a G2 truststore or a dev PKI's "
                   "truststore.pem). Issuing CAs whose CN names an SMP CA count as SMP CAs, the others as AP CAs; "
                   "self-signed ones are roots. Repeatable.")
@click.option("--env", "environment", type=click.Choice(["test", "production"]),
              help="Trust the shipped Peppol G3 CAs of this environment (default: the configured environment).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML file layered on conf/default.toml (for the default trust anchors).")
@click.option("--at", "at_text", help="Check the signer certificate at this ISO 8601 time instead of now "
              "(no zone = UTC).")
@click.option("--revocation", is_flag=True, help="Also ask the CA's CRL/OCSP server whether the signer certificate "
              "is revoked (needs network; by default revocation is not checked and the output says so).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of one line per step.")
def inspect(message_file: Path, content_type: str | None, key_file: tuple[Path, ...], key_password: str | None,
            cert_file: Path | None, trust_files: tuple[Path, ...], environment: str | None, config_path: str | None,
            at_text: str | None, revocation: bool, as_json: bool) -> None:
    """Explain an AS4 message, receipt or error in FILE, one line per processing step.

    Every step runs even when an earlier one failed (a message that cannot be decrypted still has its signature and
    certificate checked). Exit status 0 only when every step passed, 1 when something is not valid, 2 for usage
    errors.
    """
    at = _parse_time(at_text)
    keys = [_load_key(path, key_password, cert_file) for path in key_file]
    anchors = _anchors(trust_files, environment, config_path)
    # as `pki verify`: loopback CRL/OCSP URLs only under a PKI of one's own (--trust)
    policy = EgressPolicy.from_settings((), local=bool(trust_files))
    checker = RevocationChecker(http_fetcher(policy)) if revocation else None
    validator = CertificateValidator(anchors, checker)
    with message_file.open("rb") as stream:
        report = inspect_message(iter(lambda: stream.read(1 << 16), b""), content_type, checks=offline_checks(),
                                 keys=keys, validator=validator, at=at, limits=InboundLimits())
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for line in human_lines(report):
            click.echo(line)
    raise SystemExit(0 if report.valid else 1)
