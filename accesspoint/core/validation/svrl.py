"""Reading the SVRL report a compiled Schematron writes, and placing its findings in the document.

Every `svrl:failed-assert` and `svrl:successful-report` is a finding (a Schematron `report` fires when its test is
true, so it is a finding as much as a failed `assert`); the rule's `flag` says fatal or warning. Nothing is
de-duplicated: a rule that fails on three lines is three findings.
"""

from __future__ import annotations

import re
from typing import cast

from lxml import etree

from accesspoint.core.validation.report import FATAL, WARNING, Finding, Flag
from base.safexml import parse_bytes

SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
_FINDINGS = (f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report")
# SVRL grows with the document (a fired-rule per context): no smaller bound than the documents we take
_SVRL_MAX_BYTES = 1 << 31
_FLAGS: dict[str, Flag] = {FATAL: FATAL, WARNING: WARNING, "error": FATAL, "information": WARNING}
# XPath 2.0 wildcard-prefix steps as the Schematron skeleton writes them: *:Name[namespace-uri()='X']
_STEP = re.compile(r"\*:([\w.\-]+)\[namespace-uri\(\)='([^']*)'\]")
_ATTRIBUTE_STEP = re.compile(r"@\*\[local-name\(\)='([\w.\-]+)'(?: and namespace-uri\(\)='')?\]")


def parse_svrl(svrl: str, layer: str) -> list[Finding]:
    """The findings of one SVRL document, in document order. A missing flag counts as fatal: the rule did not
    say it may be ignored."""
    root = parse_bytes(svrl.encode("utf-8"), max_bytes=_SVRL_MAX_BYTES)
    findings = []
    for element in root.iter(*_FINDINGS):
        text = element.find(f"{{{SVRL_NS}}}text")
        message = " ".join("".join(text.itertext()).split()) if text is not None else ""
        findings.append(Finding(
            rule_id=element.get("id") or "", flag=_FLAGS.get((element.get("flag") or FATAL).lower(), FATAL),
            message=message, location=element.get("location") or "", line=None, layer=layer,
        ))
    return findings


def xpath1(location: str) -> str:
    """An SVRL location in XPath 1.0 (lxml's): `*:Name[namespace-uri()='X'][n]` becomes
    `*[local-name()='Name' and namespace-uri()='X'][n]`."""
    converted = _STEP.sub(r"*[local-name()='\1' and namespace-uri()='\2']", location)
    return _ATTRIBUTE_STEP.sub(r"@\1", converted)


def line_of(root: etree._Element, location: str) -> int | None:
    """The line of the element (or of an attribute's element) an SVRL location names, when it names one."""
    if not location.startswith("/"):
        return None
    try:
        found = root.xpath(xpath1(location))
    except etree.XPathError:
        return None
    if not isinstance(found, list) or not found:
        return None
    node = found[0]
    if isinstance(node, etree._Element):
        return cast(int | None, node.sourceline)
    parent = getattr(node, "getparent", None)  # an attribute or text result: its element's line
    element = parent() if parent is not None else None
    return cast(int | None, element.sourceline) if isinstance(element, etree._Element) else None
