"""`peppol-ap validate FILE... [--json] [--release R]`: the official BIS rules on documents, one line per finding
(accesspoint.flows.validation, the same checks as before sending and after receiving)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from accesspoint.adapters.validation import NotXml, RulesUnavailable, Validator
from accesspoint.cli.common import config_option, fail_config
from accesspoint.config import ConfigError, load_config
from accesspoint.core.validation import Report, Status
from accesspoint.flows.validation import business_document
from accesspoint.gateway import build_validator
from accesspoint.store.types import utcnow

VALID, INVALID, UNUSABLE = 0, 1, 2


def _check(validator: Validator, path: Path, release: str | None) -> tuple[int, dict[str, Any], list[str]]:
    """Exit code, JSON object and human lines for one file."""
    try:
        document = business_document(path.read_bytes())
        report = validator.validate(document, utcnow().date(), release=release)
    except OSError as exc:
        return _unusable(path, f"cannot be read: {exc.strerror}")
    except NotXml as exc:
        return _unusable(path, f"not XML the gateway accepts: {exc}")
    except RulesUnavailable as exc:
        return _unusable(path, str(exc))
    if report is None:
        return _unusable(path, "of no document type configured in [validation.document_types] (not validated)")
    return (INVALID if report.status is Status.INVALID else VALID), {"file": str(path), **report.to_dict()}, \
        _lines(path, report)


def _unusable(path: Path, detail: str) -> tuple[int, dict[str, Any], list[str]]:
    return UNUSABLE, {"file": str(path), "status": "unusable", "detail": detail}, [f"{path}: unusable: {detail}"]


def _lines(path: Path, report: Report) -> list[str]:
    lines = [f"{path}:{f.line or 0}: {f.flag} {f.rule_id} {f.message} ({f.location})" for f in report.findings]
    lines.append(f"{path}: {report.status.value} ({len(report.fatal)} fatal, {len(report.warnings)} warning; "
                 f"{report.document_type}, release {report.release})")
    return lines


@click.command()
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, an object per file.")
@click.option("--release", help="Validate with this installed rule release (e.g. 2025.11) instead of the one in "
                                "force today.")
@config_option
def validate(files: tuple[Path, ...], as_json: bool, release: str | None, config_path: str | None) -> None:
    """Validate UBL invoices and credit notes (or complete SBDs) with the official Peppol BIS rules: UBL 2.1 XSD, CEN
    EN 16931, Peppol BIS. One line per finding, `FILE:LINE: flag RULE message (location)`, and a summary per file.
    Exit status 0 when every file is compliant (warnings allowed), 1 when one has a fatal finding, 2 when one
    cannot be validated (unreadable, not XML, rules not installed)."""
    try:
        validator = build_validator(load_config(config_path))
    except ConfigError as exc:
        fail_config(exc)
    code = VALID
    objects = []
    for path in files:
        result, data, lines = _check(validator, path, release)
        code = max(code, result)
        objects.append(data)
        if not as_json:
            for line in lines:
                click.echo(line, err=result == UNUSABLE)
    if as_json:
        click.echo(json.dumps(objects, indent=2, ensure_ascii=False))
    raise SystemExit(code)
