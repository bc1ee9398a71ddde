"""SVRL reading and placing findings in the document (accesspoint.core.validation.svrl)."""

from __future__ import annotations

from accesspoint.core.validation import FATAL, WARNING, line_of, parse_svrl, xpath1
from base.safexml import parse_bytes

SVRL = """<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
  <svrl:fired-rule context="/"/>
  <svrl:failed-assert id="BR-01" flag="fatal" location="/*:Invoice[namespace-uri()='urn:i'][1]" test="x">
    <svrl:text>[BR-01]-An Invoice shall
      have a Specification identifier.</svrl:text>
  </svrl:failed-assert>
  <svrl:successful-report id="UBL-CR-679" flag="warning"
      location="/*:Invoice[namespace-uri()='urn:i'][1]/*:Line[namespace-uri()='urn:c'][2]/@schemeID" test="y">
    <svrl:text>should not</svrl:text>
  </svrl:successful-report>
  <svrl:failed-assert id="X-1" location="/*:Invoice[namespace-uri()='urn:i'][1]" test="z"><svrl:text/>
  </svrl:failed-assert>
</svrl:schematron-output>"""
DOCUMENT = b"""<Invoice xmlns="urn:i" xmlns:c="urn:c">
  <c:Line schemeID="a"/>

  <c:Line schemeID="b"/>
</Invoice>"""


def test_failed_asserts_and_successful_reports_are_findings_in_document_order() -> None:
    findings = parse_svrl(SVRL, "CEN-EN16931-UBL")
    assert [(f.rule_id, f.flag, f.layer) for f in findings] == [
        ("BR-01", FATAL, "CEN-EN16931-UBL"), ("UBL-CR-679", WARNING, "CEN-EN16931-UBL"), ("X-1", FATAL,
                                                                                        "CEN-EN16931-UBL")]
    assert findings[0].message == "[BR-01]-An Invoice shall have a Specification identifier."  # whitespace folded


def test_locations_become_xpath_1_and_give_the_line() -> None:
    location = "/*:Invoice[namespace-uri()='urn:i'][1]/*:Line[namespace-uri()='urn:c'][2]/@schemeID"
    assert xpath1(location) == ("/*[local-name()='Invoice' and namespace-uri()='urn:i'][1]"
                                "/*[local-name()='Line' and namespace-uri()='urn:c'][2]/@schemeID")
    root = parse_bytes(DOCUMENT)
    assert line_of(root, location) == 4  # an attribute's line is its element's
    assert line_of(root, "/*:Invoice[namespace-uri()='urn:i'][1]") == 1
    assert line_of(root, "/*:Nothing[namespace-uri()='urn:i'][1]") is None
    assert line_of(root, "not a path") is None
