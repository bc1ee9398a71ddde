"""Extracting the business document from a stored SBD, by byte offsets in one streaming parse."""


from __future__ import annotations

import codecs
import pyexpat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from accesspoint.core.sbdh.model import (
    SBDH_NS,
    SbdhError,
)

#
# The inbox serves the business document without its envelope. Stored SBDs can be 100 MB or more, so the
# document is located by byte offsets in one streaming parse and then copied out of the stored bytes; it is
# never parsed into a tree nor re-serialised. lxml reports no byte offsets, so this parse uses expat (the
# stdlib's), hardened like base.safexml: a DOCTYPE is refused, which leaves no way to declare an entity.

_EXTRACT_CHUNK = 64 * 1024
_EXPAT_SEPARATOR = " "
_SBDH_PREFIX = SBDH_NS + _EXPAT_SEPARATOR
_XML_DECLARATION_UTF8 = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_UTF8_CODECS = frozenset({"utf-8", "ascii"})
# expat keeps every open element on its stack, about a hundred bytes each, so nesting is what a payload can amplify:
# 200 MB of "<a>" (1 MB gzipped) would cost gigabytes. libxml2 stops at 256 levels unless told otherwise; a Peppol
# document with its envelope needs fewer than 20 (the deepest vector has 12).
MAX_DEPTH = 256


@dataclass(frozen=True)
class DocumentSpan:
    """Where the business document lies inside an SBD, as byte offsets into the SBD.

    `namespaces` are the envelope's namespace declarations the document relies on without declaring them
    itself (`(prefix, uri)`, prefix "" for the default namespace): extraction adds them to the document's
    start tag so the document means the same outside the envelope.
    """

    start: int
    start_tag_end: int
    end: int
    encoding: str
    namespaces: tuple[tuple[str, str], ...]


class _Locator:
    """expat handlers that find the business document: the element after the header, inside the envelope."""

    def __init__(self) -> None:
        self.parser = pyexpat.ParserCreate(namespace_separator=_EXPAT_SEPARATOR)
        self.parser.namespace_prefixes = True
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_doctype
        self.parser.XmlDeclHandler = self._xml_declaration
        self.parser.StartNamespaceDeclHandler = self._namespace
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CommentHandler = self._other
        self.parser.ProcessingInstructionHandler = self._other
        self.parser.StartCdataSectionHandler = self._other
        self.declared_encoding: str | None = None
        self.depth = 0
        self.pending: list[tuple[str, str]] = []
        self.envelope_namespaces: dict[str, str] = {}
        self.document_namespaces: dict[str, str] = {}
        self.header_seen = False
        self.start: int | None = None
        self.start_tag_end: int | None = None
        self.end: int | None = None
        # the offset to take from the next event: the end of a tag is where the next event starts
        self.capture: str | None = None
        # envelope prefixes bound to the SBDH namespace that the document's own elements or attributes use
        self.uses_sbdh_prefixes: set[str] = set()

    def _refuse_doctype(self, *_args: object) -> None:
        raise SbdhError("invalid-sbd-xml", "the SBD has a DOCTYPE declaration, which is not accepted")

    def _xml_declaration(self, _version: str, encoding: str | None, _standalone: int) -> None:
        self.declared_encoding = encoding

    def _capture_next(self, field: str) -> None:
        self.capture = field
        # text events cost a call each; they are only wanted while an offset waits for the next event
        self.parser.CharacterDataHandler = self._other

    def _mark(self) -> None:
        if self.capture is not None:
            setattr(self, self.capture, self.parser.CurrentByteIndex)
            self.capture = None
            self.parser.CharacterDataHandler = None

    def _other(self, *_args: object) -> None:
        self._mark()

    def _namespace(self, prefix: str | None, uri: str | None) -> None:
        self._mark()
        self.pending.append((prefix or "", uri or ""))

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self._mark()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SbdhError("invalid-sbd-xml", f"the SBD nests elements deeper than {MAX_DEPTH} levels")
        declared, self.pending = self.pending, []
        if self.depth == 1:
            if name.split(_EXPAT_SEPARATOR)[:2] != [SBDH_NS, "StandardBusinessDocument"]:
                raise SbdhError("invalid-sbd-xml", "the root element is not <StandardBusinessDocument> in namespace "
                                                   f"{SBDH_NS!r}")
            self.envelope_namespaces = dict(declared)
        elif self.depth == 2:
            if not self.header_seen:
                if name.split(_EXPAT_SEPARATOR)[:2] != [SBDH_NS, "StandardBusinessDocumentHeader"]:
                    raise SbdhError("missing-sbdh", "the first element inside <StandardBusinessDocument> is not "
                                                    "<StandardBusinessDocumentHeader>")
                self.header_seen = True
            elif self.start is None:
                self.start = self.parser.CurrentByteIndex
                self._capture_next("start_tag_end")
                self.document_namespaces = dict(declared)
            else:
                raise SbdhError("invalid-sbd-xml", "<StandardBusinessDocument> holds more than one business document")
        if self.start is not None and self.end is None:
            self._note_sbdh_use(name, attributes)

    def _note_sbdh_use(self, name: str, attributes: dict[str, str]) -> None:
        for qualified in (name, *attributes):
            if qualified.startswith(_SBDH_PREFIX):
                parts = qualified.split(_EXPAT_SEPARATOR)
                self.uses_sbdh_prefixes.add(parts[2] if len(parts) == 3 else "")

    def _end(self, _name: str) -> None:
        self._mark()
        self.depth -= 1
        if self.depth == 1 and self.start is not None and self.end is None:
            self._capture_next("end")

    def feed(self, stream: IO[bytes]) -> None:
        while True:
            chunk = stream.read(_EXTRACT_CHUNK)
            if chunk is None:
                raise BlockingIOError("the SBD stream had no data ready (non-blocking); pass a blocking stream")
            self.parser.Parse(chunk, not chunk)
            if not chunk:
                return


def _codec(head: bytes, declared: str | None) -> str:
    if head.startswith(b"\xff\xfe"):
        return "utf-16-le"
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be"
    try:
        return codecs.lookup(declared or "utf-8").name
    except LookupError:
        raise SbdhError("invalid-sbd-xml", f"the SBD declares the unknown encoding {declared!r}") from None


def locate_business_document(sbd_stream: IO[bytes]) -> DocumentSpan:
    """Find the business document in a complete SBD by parsing it once, streaming (memory stays flat).

    Reads the stream to its end from where it stands; the offsets count from that position. Raises SbdhError
    (`invalid-sbd-xml`) for a malformed SBD, a DOCTYPE, elements nested deeper than MAX_DEPTH, or an envelope
    without exactly one business document.
    """
    head = b""
    while len(head) < 4 and (more := sbd_stream.read(4 - len(head))):
        head += more
    locator = _Locator()
    try:
        locator.parser.Parse(head, False)
        locator.feed(sbd_stream)
    except pyexpat.ExpatError as exc:
        raise SbdhError("invalid-sbd-xml", f"the SBD is not well-formed XML: {exc}") from None
    except LookupError as exc:  # expat asks Python's codecs for encodings it does not know itself
        raise SbdhError("invalid-sbd-xml", f"the SBD declares an unknown encoding: {exc}") from None
    if locator.start is None or locator.start_tag_end is None or locator.end is None:
        what = "header" if not locator.header_seen else "business document after the header"
        raise SbdhError("invalid-sbd-xml", f"<StandardBusinessDocument> has no {what}")
    own = locator.document_namespaces
    needed = tuple(
        (prefix, uri) for prefix, uri in sorted(locator.envelope_namespaces.items())
        if prefix not in own and (uri != SBDH_NS or prefix in locator.uses_sbdh_prefixes)
    )
    return DocumentSpan(start=locator.start, start_tag_end=locator.start_tag_end, end=locator.end,
                        encoding=_codec(head, locator.declared_encoding), namespaces=needed)


def _attribute_value(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
            .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;"))


def _declarations(span: DocumentSpan) -> str:
    return "".join(f' xmlns{":" + prefix if prefix else ""}="{_attribute_value(uri)}"'
                   for prefix, uri in span.namespaces)


def _start_tag(raw: bytes, span: DocumentSpan) -> bytes:
    tag = raw.decode(span.encoding)
    if not span.namespaces:
        return tag.encode("utf-8")
    name_end = next((i for i, char in enumerate(tag) if i and char in " \t\r\n/>"), len(tag))
    return (tag[:name_end] + _declarations(span) + tag[name_end:]).encode("utf-8")


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    while size:
        data = stream.read(size)
        if not data:
            raise SbdhError("invalid-sbd-xml", "the SBD ended before the business document did (was it changed?)")
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def iter_business_document(sbd_stream: IO[bytes], span: DocumentSpan) -> Iterator[bytes]:
    """The business document as UTF-8 XML with a declaration, in chunks, copied from a seekable SBD stream.

    The document's bytes are those of the envelope, unchanged when the SBD is UTF-8 (Peppol's recommendation)
    and transcoded otherwise; only the start tag gains the envelope namespace declarations it relies on.
    Comments and processing instructions between the header and the document are not part of it.
    """
    sbd_stream.seek(span.start)
    start_tag = _read_exactly(sbd_stream, span.start_tag_end - span.start)
    yield _XML_DECLARATION_UTF8 + _start_tag(start_tag, span)
    remaining = span.end - span.start_tag_end
    decoder = None
    if span.encoding not in _UTF8_CODECS:
        decoder = codecs.getincrementaldecoder(span.encoding)()
    while remaining:
        chunk = _read_exactly(sbd_stream, min(remaining, _EXTRACT_CHUNK))
        remaining -= len(chunk)
        yield chunk if decoder is None else decoder.decode(chunk, final=not remaining).encode("utf-8")


def document_length(span: DocumentSpan) -> int | None:
    """Bytes `iter_business_document` yields, when known without reading (UTF-8 SBDs); for Content-Length."""
    if span.encoding not in _UTF8_CODECS:
        return None
    return len(_XML_DECLARATION_UTF8) + span.end - span.start + len(_declarations(span).encode("utf-8"))
