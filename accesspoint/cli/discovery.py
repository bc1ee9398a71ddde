"""`peppol-ap lookup` and `peppol-ap smp inspect`: discovery from the command line.

Both print every step and its verdict; both exit 0 only when everything they checked is valid
(1 = a check failed, 2 = the command could not run: bad arguments, configuration, unreadable file).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from accesspoint.adapters.discovery import build_discovery
from accesspoint.cli.common import config_option, fail, fail_config
from accesspoint.config import Config, ConfigError, load_config, revocation_checker, trust_anchors
from base.safexml import XmlError, parse_bytes
from certs.anchors import TrustAnchors, peppol_anchors
from certs.keystore import KeystoreError, load_certificates
from certs.validation import CertificateValidator, Purpose
from smp.errors import DiscoveryError
from smp.identifiers import BIS3_INVOICE, BIS3_PROCESS, DocumentTypeId, IdentifierError, ParticipantId, ProcessId
from smp.servicemetadata import (
    ServiceMetadataError,
    XmlId,
    describe_endpoints,
    parse_service_group,
    parse_service_metadata,
    select_endpoint,
    verify_signature,
)

env_option = click.option(
    "--env", type=click.Choice(["local", "test", "production"]),
    help="Peppol network (default: the configured environment).",
)
trust_option = click.option(
    "--trust", "trust_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
    help="PEM file with SMP CA (and root) certificates to trust instead of the environment's. Repeatable.",
)
ap_trust_option = click.option(
    "--ap-trust", "ap_trust_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
    help="PEM file with AP CA (and root) certificates for endpoint certificates. Repeatable.",
)
at_option = click.option("--at", "at_text", help="Judge validity at this ISO time (default: now).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _parse_at(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--at: {text!r} is not an ISO date/time (e.g. 2026-11-21T12:00:00Z)")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _config(config_path: str | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail_config(exc)


def _load_pems(files: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
    """(self-signed roots, intermediate CAs) from PEM files."""
    roots, cas = [], []
    for name in files:
        try:
            certs = load_certificates(name)
        except KeystoreError as exc:
            fail(f"{name}: {exc}")
        for cert in certs:
            (roots if cert.subject == cert.issuer else cas).append(cert)
    return roots, cas


def _anchors(cfg: Config, env: str, trust_files: tuple[str, ...], ap_trust_files: tuple[str, ...]) -> Any:
    if not trust_files and not ap_trust_files:
        return peppol_anchors(env) if env != "local" else trust_anchors(cfg)  # type: ignore[arg-type]
    smp_roots, smp_cas = _load_pems(trust_files)
    ap_roots, ap_cas = _load_pems(ap_trust_files)
    return TrustAnchors(environment="local", roots=tuple(smp_roots + ap_roots), ap_cas=tuple(ap_cas),
                        smp_cas=tuple(smp_cas))


def _validator(cfg: Config, env: str, anchors: Any, revocation: bool) -> Any:
    """The validator the gateway itself would use for `env` (no revocation in local), or none at all."""
    return CertificateValidator(anchors, revocation_checker(cfg, env) if revocation else None)


def _verdict_dict(verdict: Any) -> dict[str, Any]:
    if hasattr(verdict, "to_dict"):
        data = dict(verdict.to_dict())
    else:
        data = {"valid": verdict.valid, "reason": verdict.reason, "detail": verdict.detail}
    return json.loads(json.dumps(data, default=str))


# --------------------------------------------------------------------------------------------- lookup


@click.command()
@click.argument("participant")
@click.option("--doctype", help="Document type id (default: Peppol BIS Billing 3.0 invoice).")
@click.option("--process", help="Process id (default: Peppol BIS Billing 3.0).")
@env_option
@click.option("--zone", help="SML DNS zone (default: the environment's).")
@click.option("--dns-server", "dns_servers", multiple=True, help="DNS server ip or ip:port. Repeatable.")
@trust_option
@ap_trust_option
@click.option("--no-revocation", is_flag=True, help="Do not ask CRL/OCSP servers (the output says so).")
@click.option("--legacy-sha1", is_flag=True, help="Accept RSA-SHA1 SMP signatures (archived answers only).")
@at_option
@json_option
@config_option
def lookup(participant: str, doctype: str | None, process: str | None, env: str | None, zone: str | None,
           dns_servers: tuple[str, ...], trust_files: tuple[str, ...], ap_trust_files: tuple[str, ...],
           no_revocation: bool, legacy_sha1: bool, at_text: str | None, as_json: bool,
           config_path: str | None) -> None:
    """Find PARTICIPANT's access point (SML NAPTR + SMP) and print every step."""
    cfg = _config(config_path)
    env = env or cfg.environment
    at = _parse_at(at_text)
    try:
        pid = ParticipantId.parse(participant)
        doc = DocumentTypeId.parse(doctype) if doctype else BIS3_INVOICE
        proc = ProcessId.parse(process) if process else BIS3_PROCESS
    except IdentifierError as exc:
        fail(str(exc))
    validator = _validator(cfg, env, _anchors(cfg, env, trust_files, ap_trust_files), not no_revocation)
    try:
        discovery = build_discovery(cfg, validator, environment=env, zone=zone,
                                    dns_servers=list(dns_servers) or None, allow_sha1=legacy_sha1)
    except ValueError as exc:
        fail(f"--dns-server: {exc}")
    sml_zone = discovery.sml.zone
    request = {"participant": pid.uri, "document_type": doc.uri, "process": proc.uri, "zone": sml_zone,
               "environment": env, "at": at.isoformat(),
               "revocation_checked": validator.revocation is not None}
    try:
        result = discovery.find_endpoint(pid, doc, proc, at=at, use_cache=False, with_service_group=True)
    except DiscoveryError as exc:
        steps = [s.to_dict() for s in exc.steps]
        if as_json:
            click.echo(json.dumps({**request, "valid": False, "steps": steps, "error": exc.to_dict(),
                                   "result": None}, indent=2))
        else:
            _print_steps(request, exc.steps)
            click.echo(f"verdict      FAILED ({exc.kind}{', retryable' if exc.retryable else ''})")
            click.echo(f"peppol-ap: {exc.message}", err=True)
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(1)
    summary = {
        "smp_uri": result.smp_uri, "endpoint_url": result.endpoint_url, "transport_profile": result.transport_profile,
        "certificate_subject": result.certificate_subject,
        "certificate_not_before": result.certificate.not_valid_before_utc.isoformat(),
        "certificate_not_after": result.certificate.not_valid_after_utc.isoformat(),
        "certificate_verdict": _verdict_dict(result.certificate_verdict),
        "metadata_url": result.metadata.url, "redirected_from": result.metadata.redirected_from,
    }
    if as_json:
        click.echo(json.dumps({**request, "valid": True, "steps": [s.to_dict() for s in result.steps],
                               "error": None, "result": summary}, indent=2))
        return
    _print_steps(request, result.steps)
    click.echo(f"verdict      OK: send to {result.endpoint_url} encrypting for {result.certificate_subject}")


def _print_steps(request: dict[str, Any], steps: Any) -> None:
    click.echo(f"participant  {request['participant']}")
    click.echo(f"document     {request['document_type']}")
    click.echo(f"process      {request['process']}")
    click.echo(f"zone         {request['zone']} ({request['environment']})")
    if not request["revocation_checked"]:
        why = "local environment: the dev PKI publishes no CRL or OCSP" if request["environment"] == "local" \
            else "--no-revocation"
        click.echo(f"revocation   NOT checked ({why})")
    for step in steps:
        mark = "ok " if step.ok else "BAD"
        click.echo(f"{step.stage:<15} {mark} {step.detail}")
        if step.stage == "naptr":
            click.echo(f"{'smp uri':<15} ok  {step.data['smp_uri']}")
        elif step.stage == "services":
            for doc in step.data["document_types"]:
                click.echo(f"{'':<20}{doc}")
        elif step.stage == "ap-certificate" and "subject" in step.data:
            click.echo(f"{'':<20}{step.data['subject']}, valid {step.data['not_before']} .. {step.data['not_after']}")


# --------------------------------------------------------------------------------------------- smp inspect


@click.group()
def smp() -> None:
    """SMP tools."""


@smp.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@trust_option
@ap_trust_option
@env_option
@at_option
@click.option("--process", help="Also choose the AS4 endpoint for this process id (scheme::value).")
@click.option("--legacy-sha1", is_flag=True, help="Accept RSA-SHA1 signatures (archived answers only).")
@click.option("--no-revocation/--revocation", default=True, show_default=True,
              help="Ask CRL/OCSP servers about the signer (off by default for files).")
@json_option
@config_option
def smp_inspect(file: str, trust_files: tuple[str, ...], ap_trust_files: tuple[str, ...], env: str | None,
                at_text: str | None, process: str | None, legacy_sha1: bool, no_revocation: bool, as_json: bool,
                config_path: str | None) -> None:
    """Explain an SMP answer FILE (ServiceGroup or SignedServiceMetadata): signature, signer, endpoints."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror}")
    try:
        root = parse_bytes(data)
    except XmlError as exc:
        _report(as_json, {"file": file, "valid": False, "problems": [str(exc)]})
        sys.exit(1)
    at = _parse_at(at_text)
    local = root.tag.rsplit("}", 1)[-1]
    try:
        if local == "ServiceGroup":
            report = _inspect_group(root)
        else:
            report = _inspect_metadata(data, config_path, env, trust_files, ap_trust_files, at, process,
                                       legacy_sha1, not no_revocation)
    except ServiceMetadataError as exc:
        report = {"kind": local, "valid": False, "problems": [str(exc)]}
    _report(as_json, {"file": file, "at": at.isoformat(), **report})
    sys.exit(0 if report["valid"] else 1)


def _inspect_group(root: Any) -> dict[str, Any]:
    group = parse_service_group(root)
    return {
        "kind": "ServiceGroup", "dialect": group.dialect, "participant": group.participant.uri,
        "document_types": [d.uri for d in group.document_types], "signature": None, "certificate": None,
        "redirect": None, "problems": list(group.problems), "valid": not group.problems,
    }


def _inspect_metadata(data: bytes, config_path: str | None, env: str | None, trust_files: tuple[str, ...],
                      ap_trust_files: tuple[str, ...], at: datetime, process: str | None, legacy_sha1: bool,
                      revocation: bool) -> dict[str, Any]:
    problems: list[str] = []
    check = verify_signature(data, allow_sha1=legacy_sha1)
    problems.extend(f"signature: {p}" for p in check.problems)
    # Explain what the file says even when the signature fails, but only trust the signed part.
    metadata = parse_service_metadata(check.signed_root if check.valid else parse_bytes(data))
    certificate: dict[str, Any] | None = None
    endpoints = describe_endpoints(metadata.endpoints)
    if check.certificate is not None:
        cfg = _config(config_path)
        env = env or cfg.environment
        validator = _validator(cfg, env, _anchors(cfg, env, trust_files, ap_trust_files), revocation)
        verdict = validator.validate(check.certificate, Purpose.SMP_SIGNING, at)
        certificate = _verdict_dict(verdict)
        certificate.setdefault("subject", check.subject)
        if not verdict.valid:
            problems.append(f"signer certificate: {verdict.reason}: {verdict.detail}")
        if ap_trust_files or not trust_files:
            for described, endpoint in zip(endpoints, metadata.endpoints, strict=True):
                if endpoint.certificate is None:
                    continue
                ap = validator.validate(endpoint.certificate, Purpose.AP_ENCRYPTION, at)
                described["certificate_verdict"] = _verdict_dict(ap)
    report: dict[str, Any] = {
        "kind": "SignedServiceMetadata", "dialect": metadata.dialect,
        "signature": {"valid": check.valid, "signer_subject": check.subject, "algorithm": check.algorithm,
                      "problems": list(check.problems), "warnings": list(check.warnings)},
        "certificate": certificate,
        "participant": metadata.participant.uri if metadata.participant else None,
        "document_type": metadata.document_type.uri if metadata.document_type else None,
        "processes": [{"process": p.process.uri, "endpoints": describe_endpoints(p.endpoints)}
                      for p in metadata.processes],
        "endpoints": endpoints,
        "redirect": metadata.redirect.href if metadata.redirect else None,
        "redirect_certificate_uid": metadata.redirect.certificate_uid if metadata.redirect else None,
    }
    if process:
        scheme, sep, value = process.partition("::")
        wanted = XmlId(scheme, value) if sep else XmlId("cenbii-procid-ubl", process)
        chosen = select_endpoint(metadata, wanted, at=at)
        report["selected_endpoint"] = describe_endpoints([chosen])[0] if chosen else None
    report["problems"] = problems
    report["valid"] = check.valid and certificate is not None and bool(certificate.get("valid"))
    return report


def _report(as_json: bool, report: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(f"file         {report['file']}")
    if "kind" in report:
        click.echo(f"kind         {report['kind']} ({report.get('dialect', '?')})")
    if report.get("participant"):
        click.echo(f"participant  {report['participant']}")
    for doc in report.get("document_types", []):
        click.echo(f"service      {doc}")
    if report.get("document_type"):
        click.echo(f"document     {report['document_type']}")
    sig = report.get("signature")
    if sig:
        state = "valid" if sig["valid"] else "INVALID"
        click.echo(f"signature    {state} ({sig['algorithm']}) signer {sig['signer_subject']}")
        for warning in sig["warnings"]:
            click.echo(f"             warning: {warning}")
    cert = report.get("certificate")
    if cert:
        state = "valid" if cert.get("valid") else f"NOT valid ({cert.get('reason')})"
        click.echo(f"certificate  {state}: {cert.get('detail', '')}")
    for proc in report.get("processes", []):
        click.echo(f"process      {proc['process']}")
        for e in proc["endpoints"]:
            click.echo(f"  endpoint   {e['transport_profile']} {e['url']}")
            click.echo(f"             active {e['activation'] or '-'} .. {e['expiration'] or '-'}; "
                       f"certificate {e['certificate_subject'] or e['certificate_problem']}")
    if report.get("redirect"):
        click.echo(f"redirect     {report['redirect']} (signer must be {report['redirect_certificate_uid']})")
    if "selected_endpoint" in report:
        chosen = report["selected_endpoint"]
        click.echo(f"chosen       {chosen['url'] if chosen else 'none active for that process'}")
    for problem in report.get("problems", []):
        click.echo(f"problem      {problem}")
    click.echo(f"verdict      {'OK' if report['valid'] else 'NOT valid'}")
