"""Writing an SBD: our serialised header in front of the business document bytes exactly as received, without
re-serialising them."""


from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO

from lxml import etree

from accesspoint.core.sbdh.model import (
    COPY_CHUNK,
    COUNTRY_RE,
    HEADER_VERSION,
    KNOWN_SCOPES,
    MAX_PROLOG,
    MLS_TYPES,
    RESERVED_SCOPES,
    SBDH_NS,
    SCOPE_COUNTRY_C1,
    SCOPE_DOCUMENTID,
    SCOPE_MLS_TO,
    SCOPE_MLS_TYPE,
    SCOPE_PROCESSID,
    SPID_RE,
    SPIS_ICD,
    XML_TEXT_RE,
    Sbdh,
    SbdhError,
    format_xs_datetime,
)
from accesspoint.core.sbdh.reading import (
    Problems,
    check_payload,
    payload_of,
    q,
)
from base.safexml import XmlError, iterparse
from smp.identifiers import (
    PARTICIPANT_SCHEME,
)


def _check_writable(header: Sbdh) -> None:
    """Refuse to write an envelope that a Peppol receiver would reject."""
    for role, pid in (("sender", header.sender), ("receiver", header.receiver)):
        if pid.scheme != PARTICIPANT_SCHEME:
            raise SbdhError(f"invalid-{role}-authority", f"the {role} scheme is {pid.scheme!r}, expected "
                                                         f"{PARTICIPANT_SCHEME!r}")
    if not COUNTRY_RE.fullmatch(header.country_c1):
        raise SbdhError("invalid-country-c1", f"C1 country {header.country_c1!r} is not an ISO 3166-1 alpha-2 code")
    if not header.instance_identifier.strip():
        raise SbdhError("invalid-instance-identifier", "the SBDH InstanceIdentifier is empty")
    try:
        format_xs_datetime(header.creation)
    except ValueError as exc:
        raise SbdhError("invalid-creation-date-time", f"the SBDH creation time cannot be written: {exc}") from None
    doctype_value = header.document_type.value
    if not header.standard or not doctype_value.startswith(header.standard):
        raise SbdhError("invalid-standard", f"Standard {header.standard!r} does not start the document type "
                                            f"{doctype_value!r}")
    if not header.type_version or ":" in header.type_version or not doctype_value.endswith(":" + header.type_version):
        raise SbdhError("invalid-type-version", f"TypeVersion {header.type_version!r} is not the version at the end "
                                                f"of the document type {doctype_value!r}")
    if header.mls_to is not None and (header.mls_to.scheme != PARTICIPANT_SCHEME or header.mls_to.icd != SPIS_ICD
                                      or not SPID_RE.fullmatch(header.mls_to.local_id)):
        raise SbdhError("invalid-mls-to", f"MLS_TO {header.mls_to.uri!r} is not a Peppol service provider ID "
                                          f"({PARTICIPANT_SCHEME}::{SPIS_ICD}:<6 digits>)")
    if header.mls_type is not None and header.mls_type not in MLS_TYPES:
        raise SbdhError("invalid-mls-type", f"MLS_TYPE {header.mls_type!r} must be one of {', '.join(MLS_TYPES)}")
    names = [name for name, _ in header.additional]
    for name in names:
        if not name.strip() or name in KNOWN_SCOPES or name in RESERVED_SCOPES or names.count(name) > 1:
            raise SbdhError("invalid-additional-attribute",
                            f"additional scope {name!r} must be non-empty, unique and not a reserved scope type")


def _header_xml(header: Sbdh) -> tuple[bytes, bytes]:
    """The envelope up to and including the header, and the closing tag of the envelope."""
    root = etree.Element(q("StandardBusinessDocument"), nsmap={"sh": SBDH_NS})
    sbdh = etree.SubElement(root, q("StandardBusinessDocumentHeader"))

    def add(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, q(local))
        if text is not None:
            if not XML_TEXT_RE.fullmatch(text):
                raise SbdhError("invalid-sbd-xml", f"the value {text!r} for SBDH <{local}> contains characters "
                                                   "that XML cannot carry unchanged (control characters or CR)")
            child.text = text.strip()
        return child

    add(sbdh, "HeaderVersion", HEADER_VERSION)
    for role, pid in (("Sender", header.sender), ("Receiver", header.receiver)):
        add(add(sbdh, role), "Identifier", pid.value).set("Authority", pid.scheme)
    ident = add(sbdh, "DocumentIdentification")
    add(ident, "Standard", header.standard)
    add(ident, "TypeVersion", header.type_version)
    add(ident, "InstanceIdentifier", header.instance_identifier)
    add(ident, "Type", header.type)
    add(ident, "CreationDateAndTime", format_xs_datetime(header.creation))
    scopes = add(sbdh, "BusinessScope")

    def scope(kind: str, value: str, identifier: str | None = None) -> None:
        element = add(scopes, "Scope")
        add(element, "Type", kind)
        add(element, "InstanceIdentifier", value)
        if identifier is not None:
            add(element, "Identifier", identifier)

    scope(SCOPE_DOCUMENTID, header.document_type.value, header.document_type.scheme)
    scope(SCOPE_PROCESSID, header.process.value, header.process.scheme)
    scope(SCOPE_COUNTRY_C1, header.country_c1)
    if header.mls_to is not None:
        scope(SCOPE_MLS_TO, header.mls_to.value, header.mls_to.scheme)
    if header.mls_type is not None:
        scope(SCOPE_MLS_TYPE, header.mls_type)
    for name, value in header.additional:
        scope(name, value)
    text = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
    closing = b"</sh:StandardBusinessDocument>\n"
    if not text.endswith(closing):
        raise AssertionError("lxml serialised the envelope root unexpectedly")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text[: -len(closing)], closing


_BOM_UTF8 = b"\xef\xbb\xbf"
_OTHER_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\xfe\xff", b"\xff\xfe")
_XML_DECL_RE = re.compile(
    rb"<\?xml\s+version\s*=\s*(['\"])(?P<version>[^'\"]*)\1"
    rb"(?:\s+encoding\s*=\s*(['\"])(?P<encoding>[^'\"]*)\3)?"
    rb"(?:\s+standalone\s*=\s*(['\"])(?:yes|no)\5)?\s*\?>")


def _prolog_length(start: bytes) -> int:
    """Bytes to drop from the front of the business document (BOM, XML declaration); rejects non-UTF-8."""
    if start.startswith(_OTHER_BOMS) or start[:1] == b"\x00" or start[1:2] == b"\x00":
        raise SbdhError("invalid-business-message", "the business document is UTF-16 or UTF-32 encoded; "
                                                    "only UTF-8 documents can be enveloped")
    skip = len(_BOM_UTF8) if start.startswith(_BOM_UTF8) else 0
    if not start.startswith(b"<?xml", skip) or start[skip + 5:skip + 6] not in (b" ", b"\t", b"\r", b"\n"):
        return skip
    declaration = _XML_DECL_RE.match(start, skip)
    if declaration is None:
        raise SbdhError("invalid-business-message", "the business document's XML declaration is malformed")
    if declaration.group("version") != b"1.0":
        raise SbdhError("invalid-business-message", "the business document is not XML 1.0")
    encoding = (declaration.group("encoding") or b"UTF-8").decode("ascii", "replace")
    if encoding.upper().replace("_", "-") not in ("UTF-8", "UTF8"):
        raise SbdhError("invalid-business-message", f"the business document is encoded in {encoding}; "
                                                    "only UTF-8 documents can be enveloped")
    return declaration.end()


class _CopyingReader:
    """Feeds the business document to the parser and copies it, minus its prolog, to the output."""

    def __init__(self, head: bytes, rest: IO[bytes], skip: int, out: IO[bytes]) -> None:
        self._head = head
        self._rest = rest
        self._skip = skip
        self._out = out

    def read(self, size: int = COPY_CHUNK) -> bytes:
        if self._head:
            chunk, self._head = self._head[:size], self._head[size:]
        else:
            chunk = self._rest.read(size)
        if self._skip:
            dropped = min(self._skip, len(chunk))
            self._out.write(chunk[dropped:])
            self._skip -= dropped
        else:
            self._out.write(chunk)
        return chunk


def _read_prolog(document: IO[bytes]) -> bytes:
    head = document.read(COPY_CHUNK)
    while b"?>" not in head[:MAX_PROLOG] and len(head) < MAX_PROLOG:
        more = document.read(COPY_CHUNK)
        if not more:
            break
        head += more
    return head


def _check_payload_root(header: Sbdh, element: etree._Element) -> None:
    if element.getroottree().docinfo.doctype:
        raise SbdhError("invalid-business-message", "the business document has a DOCTYPE declaration")
    payload = payload_of(element)
    problems = Problems([], [])
    check_payload(payload, problems)
    if problems.errors:
        raise SbdhError(*problems.errors[0])
    if not payload.is_xml:
        return
    if payload.namespace != header.standard:
        raise SbdhError("invalid-standard", f"the business document's root namespace is {payload.namespace!r} but "
                                            f"the SBDH Standard is {header.standard!r}")
    if payload.local_name != header.type:
        raise SbdhError("invalid-type", f"the business document's root element is {payload.local_name!r} but the "
                                        f"SBDH Type is {header.type!r}")


def _parse_and_release(reader: _CopyingReader) -> Iterator[tuple[str, etree._Element]]:
    """Parse the whole document (well-formedness) while dropping finished elements to keep memory flat."""
    for event, element in iterparse(reader, events=("start", "end")):
        yield event, element
        if event == "end":
            element.clear(keep_tail=True)
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]


def write_sbd(header: Sbdh, document_stream: IO[bytes], out_stream: IO[bytes]) -> None:
    """Stream the complete SBD: our header, then the UTF-8 business document bytes unchanged (no prolog).

    The document is parsed on the way through, so a malformed one or one whose root does not match the
    header raises SbdhError; the output written so far must then be discarded.
    """
    _check_writable(header)
    opening, closing = _header_xml(header)  # before reading anything: a bad header costs no I/O
    head = _read_prolog(document_stream)
    skip = _prolog_length(head)
    out_stream.write(opening)
    reader = _CopyingReader(head, document_stream, skip, out_stream)
    root_seen = False
    try:
        for event, element in _parse_and_release(reader):
            if event == "start" and not root_seen:
                root_seen = True
                _check_payload_root(header, element)
    except (etree.XMLSyntaxError, XmlError) as exc:
        raise SbdhError("invalid-business-message", f"the business document is not well-formed XML: {exc}") from None
    if not root_seen:
        raise SbdhError("invalid-business-message", "the business document is empty")
    out_stream.write(b"\n" + closing)


def build_sbd(header: Sbdh, document: bytes) -> bytes:
    """The complete StandardBusinessDocument for a business document held in memory."""
    out = io.BytesIO()
    write_sbd(header, io.BytesIO(document), out)
    return out.getvalue()
