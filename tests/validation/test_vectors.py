"""The official rules on the reference vectors (../shared/vectors/bis): the oracle expected-validation.json was made
with release 2025.11, the XSD verdicts are expected-xsd.json."""

from __future__ import annotations

import base64
import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from accesspoint.adapters.rules import RulesDirectory
from accesspoint.adapters.validation import Validator
from accesspoint.config import load_config
from accesspoint.core.validation import XSD_RULE, Status
from tests.conftest import VECTORS

BIS = VECTORS / "bis"
ORACLE = json.loads((BIS / "expected-validation.json").read_text())
XSD = json.loads((BIS / "expected-xsd.json").read_text())
TODAY = date(2026, 12, 4)
SCHEMA_VALID = sorted(name for name in ORACLE if XSD[name]["xsd_valid"])
SCHEMA_INVALID = sorted(name for name, verdict in XSD.items() if not verdict["xsd_valid"])
VALID = sorted(name for name, expected in ORACLE.items() if not expected["fatal"] and XSD[name]["xsd_valid"])


@pytest.fixture(scope="module")
def validator(bis_rules: Path) -> Validator:
    return Validator(RulesDirectory(bis_rules), load_config(environ={}).validation, 1 << 26)


@pytest.mark.parametrize("name", SCHEMA_VALID)
def test_release_2025_11_gives_exactly_the_oracle_rule_ids(validator: Validator, name: str) -> None:
    report = validator.validate((BIS / name).read_bytes(), TODAY, release="2025.11")
    assert report is not None and report.release == "2025.11"
    assert sorted({f.rule_id for f in report.fatal}) == ORACLE[name]["fatal"]
    assert sorted({f.rule_id for f in report.warnings}) == ORACLE[name]["warning"]


@pytest.mark.parametrize("name", VALID)
def test_valid_examples_have_no_fatal_finding_with_the_release_in_force(validator: Validator, name: str) -> None:
    report = validator.validate((BIS / name).read_bytes(), TODAY)
    assert report is not None and report.release == "2026.5"
    assert report.status is not Status.INVALID, report.fatal


@pytest.mark.parametrize("name", SCHEMA_INVALID)
def test_schema_errors_are_caught_by_the_xsd_layer_which_the_schematrons_pass(validator: Validator,
                                                                              name: str) -> None:
    assert ORACLE[name] == {"fatal": [], "warning": []}  # the schematrons alone see nothing wrong
    report = validator.validate((BIS / name).read_bytes(), TODAY)
    assert report is not None and report.status is Status.INVALID
    assert {(f.rule_id, f.layer) for f in report.findings} == {(XSD_RULE, "xsd")}
    assert all(f.line for f in report.findings)


def test_findings_carry_the_official_message_the_location_and_the_line(validator: Validator) -> None:
    report = validator.validate((BIS / "invalid/invalid-BR-CO-10.xml").read_bytes(), TODAY, release="2025.11")
    assert report is not None
    finding = next(f for f in report.fatal if f.rule_id == "BR-CO-10")
    assert finding.message.startswith("[BR-CO-10]-Sum of Invoice line net amount")
    assert finding.location.endswith("*:LegalMonetaryTotal[namespace-uri()='urn:oasis:names:specification:ubl:"
                                     "schema:xsd:CommonAggregateComponents-2'][1]")
    lines = (BIS / "invalid/invalid-BR-CO-10.xml").read_text().splitlines()
    assert "LegalMonetaryTotal" in lines[finding.line - 1]
    assert finding.layer == "CEN-EN16931-UBL"


def test_the_cen_layer_runs_before_the_peppol_layer(validator: Validator) -> None:
    report = validator.validate((BIS / "invalid/invalid-BR-01.xml").read_bytes(), TODAY, release="2025.11")
    assert report is not None
    assert [f.layer for f in report.findings] == ["CEN-EN16931-UBL", "PEPPOL-EN16931-UBL"]


def test_a_document_of_no_configured_type_is_not_validated(validator: Validator) -> None:
    assert validator.validate(b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>", TODAY) is None


def test_an_order_is_one_configuration_entry_away(bis_rules: Path) -> None:
    cfg = load_config(environ={})
    order = cfg.validation.document_types[0].model_copy(update={
        "name": "BIS Ordering 3.0 order", "root": "{urn:oasis:names:specification:ubl:schema:xsd:Order-2}Order",
        "customization": "", "xsd": "UBL-Order-2.1.xsd", "schematrons": ["PEPPOLBIS-T01.xslt"]})
    settings = cfg.validation.model_copy(update={"document_types": [order]})
    report = Validator(RulesDirectory(bis_rules), settings, 1 << 26).validate(
        b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>", TODAY)
    assert report is not None and report.document_type == "BIS Ordering 3.0 order"
    assert report.status is Status.INVALID  # an empty order misses every mandatory element


def test_request_threads_share_the_compiled_rules(validator: Validator) -> None:
    cases = {name: ORACLE[name]["fatal"] for name in ("base-example.xml", "invalid/invalid-BR-CO-10.xml",
                                                      "invalid/invalid-PEPPOL-EN16931-R003.xml")}

    def run(name: str) -> list[str]:
        report = validator.validate((BIS / name).read_bytes(), TODAY, release="2025.11")
        assert report is not None
        return sorted({f.rule_id for f in report.fatal})

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, [name for name in cases for _ in range(4)]))
    assert results == [expected for expected in cases.values() for _ in range(4)]


def test_an_invoice_with_an_attachment_larger_than_a_libxml2_text_node_validates(validator: Validator) -> None:
    """Embedded attachments (base64 in cbc:EmbeddedDocumentBinaryObject) pass libxml2's 10 MB text node limit;
    such an invoice is valid and must be validated, not refused as malformed (phase4's 20 MB interop case)."""
    scan = base64.b64encode(random.Random(20).randbytes(11 * 1024 * 1024)).decode()
    anchor = "<cac:AccountingSupplierParty>"
    text = (BIS / "base-example.xml").read_text(encoding="utf-8").replace(anchor, (
        "<cac:AdditionalDocumentReference><cbc:ID>scan-1</cbc:ID><cac:Attachment><cbc:EmbeddedDocumentBinaryObject "
        f'mimeCode="application/pdf" filename="scan.pdf">{scan}</cbc:EmbeddedDocumentBinaryObject></cac:Attachment>'
        "</cac:AdditionalDocumentReference>" + anchor), 1)
    report = validator.validate(text.encode(), TODAY)
    assert report is not None and report.status is not Status.INVALID, report.fatal
