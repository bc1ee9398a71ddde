"""The BIS validation engine: the official artefacts of the rules directory, run as published.

Layers, in order: the UBL 2.1 XSD (lxml), then the release's compiled Schematron XSLTs (Saxon, XSLT 2.0/3.0), the
CEN EN 16931 one first, then the Peppol BIS one. A document the XSD refuses gets its XSD errors as fatal findings
(rule id `UBL-XSD`) and no Schematron run: the rules assume a schema-valid document.

Compiled once per process, on first use: each XSD and each XSLT is loaded or compiled the first time a document
needs it and kept. Saxon's compiled stylesheet is shared by all request threads under a lock: a SaxonC executable
is not documented as safe for concurrent use (the s9api one is, through one transformer per thread), and one run
takes milliseconds, so a lock costs less than a compiled copy per thread.

The document Saxon sees is re-serialised from the tree parsed by base.safexml (no DTD, no entities, no network):
Saxon never parses the untrusted bytes itself.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree

from accesspoint.adapters.rules import RulesDirectory
from accesspoint.config import DocumentTypeEntry, ValidationSection
from accesspoint.core.validation import (
    FATAL,
    XSD_RULE,
    Finding,
    ReleaseError,
    Report,
    line_of,
    parse_svrl,
    select_release,
)
from base.safexml import XmlError, parse_bytes

K = TypeVar("K")
V = TypeVar("V")
_CUSTOMIZATION = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}CustomizationID"


class RulesUnavailable(RuntimeError):
    """The rules needed are not installed (or no release applies): nothing can be validated; the message names
    `peppol-ap rules install`."""


class NotXml(ValueError):
    """The document is not XML the gateway accepts (malformed, a DTD, too large)."""


@dataclass(frozen=True)
class _Stylesheet:
    executable: Any  # saxonche.PyXsltExecutable (no type stubs)
    layer: str


class Validator:
    """Validates documents with the rules of `rules`, as the [validation] settings say; thread-safe."""

    def __init__(self, rules: RulesDirectory, settings: ValidationSection, max_bytes: int) -> None:
        self.rules = rules
        self.settings = settings
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._saxon: Any = None
        self._compiler: Any = None
        self._schemas: dict[str, etree.XMLSchema] = {}
        self._stylesheets: dict[Path, _Stylesheet] = {}

    def document_type(self, root: etree._Element) -> DocumentTypeEntry | None:
        customization = root.findtext(_CUSTOMIZATION) or ""
        for entry in self.settings.document_types:
            if root.tag == entry.root and customization.strip().startswith(entry.customization):
                return entry
        return None

    def release_for(self, entry: DocumentTypeEntry, today: date, pinned: str | None = None) -> str:
        """The release that validates documents of `entry` on `today`: among the installed releases that have all
        its artefacts. Raises RulesUnavailable."""
        candidates = [r for r in self.rules.releases() if self.rules.has(r, entry.schematrons)]
        try:
            return select_release(candidates, self.settings.release_dates, today,
                                  self.settings.release if pinned is None else pinned)
        except ReleaseError as exc:
            raise RulesUnavailable(f"{exc}: run `peppol-ap rules install` (rules directory {self.rules.path})"
                                   ) from None

    def validate(self, document: bytes, today: date, *, release: str | None = None) -> Report | None:
        """Every finding of every layer for `document`, or None when it is of no configured document type.
        Raises NotXml and RulesUnavailable."""
        try:
            # huge_tree: an invoice may embed an attachment (cac:AdditionalDocumentReference, base64) larger than
            # libxml2's 10 MB text node limit; the document's size is bounded by max_bytes (as4.max_payload_bytes)
            root = parse_bytes(document, max_bytes=self.max_bytes, huge_tree=True)
        except XmlError as exc:
            raise NotXml(str(exc)) from None
        entry = self.document_type(root)
        if entry is None:
            return None
        chosen = self.release_for(entry, today, release)
        findings = self._xsd(root, entry) if entry.xsd else []
        if not findings:
            text = etree.tostring(root, encoding="unicode")
            for name in entry.schematrons:
                stylesheet = self._stylesheet(self.rules.xslt(chosen, name))
                with self._lock:
                    node = self._saxon.parse_xml(xml_text=text)
                    svrl = stylesheet.executable.transform_to_string(xdm_node=node)
                findings += [_placed(f, root) for f in parse_svrl(svrl, stylesheet.layer)]
        return Report(release=chosen, document_type=entry.name, findings=tuple(findings))

    def warm_up(self, today: date) -> None:
        """Load and compile everything the configured document types need now (for benchmarks and start-up)."""
        for entry in self.settings.document_types:
            try:
                chosen = self.release_for(entry, today)
            except RulesUnavailable:
                continue
            if entry.xsd:
                self._schema(entry.xsd)
            for name in entry.schematrons:
                self._stylesheet(self.rules.xslt(chosen, name))

    def _xsd(self, root: etree._Element, entry: DocumentTypeEntry) -> list[Finding]:
        schema = self._schema(entry.xsd)
        if schema.validate(root):
            return []
        return [Finding(rule_id=XSD_RULE, flag=FATAL, message=error.message, location=error.path or "",
                        line=error.line or None, layer="xsd") for error in schema.error_log]

    def _schema(self, name: str) -> etree.XMLSchema:
        def load() -> etree.XMLSchema:
            path = self.rules.schema(name)
            if not path.is_file():
                raise RulesUnavailable(f"the UBL schema {name} is not installed: run `peppol-ap rules install` "
                                       f"(rules directory {self.rules.path})")
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            return etree.XMLSchema(etree.parse(str(path), parser))
        return self._cached(self._schemas, name, load)

    def _stylesheet(self, path: Path) -> _Stylesheet:
        def compile_() -> _Stylesheet:
            if not path.is_file():
                raise RulesUnavailable(f"{path} is not installed: run `peppol-ap rules install`")
            if self._compiler is None:
                from saxonche import PySaxonProcessor  # a JVM-sized native library: loaded by the first validation

                self._saxon = PySaxonProcessor(license=False)
                self._compiler = self._saxon.new_xslt30_processor()
            return _Stylesheet(self._compiler.compile_stylesheet(stylesheet_file=str(path)), path.stem)
        return self._cached(self._stylesheets, path, compile_)

    def _cached(self, cache: dict[K, V], key: K, make: Callable[[], V]) -> V:
        found = cache.get(key)
        if found is None:
            with self._lock:
                found = cache.get(key)
                if found is None:
                    found = cache[key] = make()
        return found


def _placed(finding: Finding, root: etree._Element) -> Finding:
    line = line_of(root, finding.location)
    return finding if line is None else dataclasses.replace(finding, line=line)
