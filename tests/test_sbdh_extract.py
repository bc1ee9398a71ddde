"""Extracting the business document from a stored SBD: byte-exact for our envelopes, the same XML (exclusive
C14N) for envelopes whose namespace declarations the document inherits, other encodings, hostile input, and
flat memory for large documents."""

from __future__ import annotations

import io
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from lxml import etree

from accesspoint.core.sbdh import (
    SBDH_NS,
    DocumentSpan,
    SbdhError,
    build_sbd,
    document_length,
    iter_business_document,
    locate_business_document,
    sbdh_from_ubl,
)

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
HEADER = b"<sh:StandardBusinessDocumentHeader><sh:HeaderVersion>1.0</sh:HeaderVersion>" \
         b"</sh:StandardBusinessDocumentHeader>"


def extract_business_document(sbd_stream: IO[bytes], out: IO[bytes]) -> DocumentSpan:
    """The business document of a complete SBD (a seekable stream) to `out`, as the inbox serves it."""
    origin = sbd_stream.tell()
    span = locate_business_document(sbd_stream)
    shifted = DocumentSpan(origin + span.start, origin + span.start_tag_end, origin + span.end, span.encoding,
                           span.namespaces)
    for chunk in iter_business_document(sbd_stream, shifted):
        out.write(chunk)
    return shifted


def _extract(sbd: bytes) -> bytes:
    out = io.BytesIO()
    extract_business_document(io.BytesIO(sbd), out)
    return out.getvalue()


def _envelope(payload: bytes, *, namespaces: bytes = b"", after: bytes = b"") -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<sh:StandardBusinessDocument xmlns:sh="' + SBDH_NS.encode()
            + b'"' + namespaces + b">" + HEADER + payload + after + b"</sh:StandardBusinessDocument>")


def _payload_c14n(sbd: bytes) -> bytes:
    root = etree.fromstring(sbd)
    return etree.tostring(root[1], method="c14n", exclusive=True)


def test_our_envelopes_give_back_the_document_byte_for_byte(vectors: Path) -> None:
    for path in sorted((vectors / "bis").glob("*.xml")):
        document = path.read_bytes()
        sbd = build_sbd(sbdh_from_ubl(document, creation=datetime.now(UTC)), document)
        extracted = _extract(sbd)
        root_start = document.index(b"<Invoice") if b"<Invoice" in document else document.index(b"<CreditNote")
        assert extracted == DECLARATION + document[root_start:].rstrip(), path.name
        span = locate_business_document(io.BytesIO(sbd))
        assert span.namespaces == () and document_length(span) == len(extracted)


def test_the_phase4_envelope_keeps_the_document_meaning(vectors: Path) -> None:
    sbd = (vectors / "as4" / "sbdh" / "good" / "phase4-base-sbdh.xml").read_bytes()
    extracted = _extract(sbd)
    document = etree.fromstring(extracted)
    assert etree.QName(document).localname == "Invoice"
    assert etree.tostring(document, method="c14n", exclusive=True) == _payload_c14n(sbd)
    # the envelope's SBDH default namespace is redeclared by the invoice: it does not leak into the document
    assert SBDH_NS.encode() not in extracted


def test_prefixes_declared_only_on_the_envelope_are_carried_over() -> None:
    payload = (b'<inv:Invoice xmlns:inv="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
               b'xsi:schemaLocation="urn:x x.xsd"><cbc:ID>1</cbc:ID><cbc:Note xsi:type="cbc:TextType">a&amp;b'
               b'</cbc:Note></inv:Invoice>')
    sbd = _envelope(payload, namespaces=b' xmlns:cbc="urn:cbc" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
    extracted = _extract(sbd)
    assert extracted.startswith(DECLARATION + b'<inv:Invoice xmlns:cbc="urn:cbc" '
                                b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:inv=')
    assert extracted.endswith(b"</cbc:Note></inv:Invoice>")
    assert etree.tostring(etree.fromstring(extracted), method="c14n", exclusive=True) == _payload_c14n(sbd)
    assert document_length(locate_business_document(io.BytesIO(sbd))) == len(extracted)


def test_the_sbdh_namespace_is_carried_over_only_when_the_document_uses_it() -> None:
    default_envelope = (b'<StandardBusinessDocument xmlns="' + SBDH_NS.encode() + b'">'
                        b"<StandardBusinessDocumentHeader/>"
                        b'<x:Doc xmlns:x="urn:x"><Inner/></x:Doc></StandardBusinessDocument>')
    extracted = _extract(default_envelope)
    assert extracted == DECLARATION + b'<x:Doc xmlns="' + SBDH_NS.encode() + b'" xmlns:x="urn:x"><Inner/></x:Doc>'
    assert etree.fromstring(extracted)[0].tag == f"{{{SBDH_NS}}}Inner"
    unused = _envelope(b'<Doc xmlns="urn:x"><a sh:flag="1"/></Doc>')
    assert b'xmlns:sh="' in _extract(unused)
    assert _extract(_envelope(b'<Doc xmlns="urn:x"><a/></Doc>')) == DECLARATION + b'<Doc xmlns="urn:x"><a/></Doc>'


def test_an_empty_document_element_and_misc_around_it() -> None:
    sbd = _envelope(b'\n  <!-- before --><?pi x?>\n<Doc xmlns="urn:x" a=">"/>', after=b"<!-- after -->\n<?pi y?> ")
    assert _extract(sbd) == DECLARATION + b'<Doc xmlns="urn:x" a=">"/>'


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16", "windows-1252"])
def test_other_encodings_are_transcoded_to_utf8(encoding: str) -> None:
    text = (f'<?xml version="1.0" encoding="{encoding}"?><sh:StandardBusinessDocument xmlns:sh="{SBDH_NS}" '
            'xmlns:c="urn:c"><sh:StandardBusinessDocumentHeader/><Faktura xmlns="urn:x">'
            "<c:Namn>Åsa Öberg, Malmö – 5 €</c:Namn></Faktura></sh:StandardBusinessDocument>")
    if encoding == "ISO-8859-1":
        text = text.replace(" – 5 €", "")
    sbd = text.encode(encoding)
    extracted = _extract(sbd)
    expected = text.split("<sh:StandardBusinessDocumentHeader/>")[1].split("</sh:Standard")[0]
    expected = expected.replace('<Faktura xmlns="urn:x">', '<Faktura xmlns:c="urn:c" xmlns="urn:x">')
    assert extracted == DECLARATION + expected.encode("utf-8")
    assert document_length(locate_business_document(io.BytesIO(sbd))) is None


def test_a_stream_that_starts_later_and_trickles(vectors: Path) -> None:
    document = (vectors / "bis" / "base-example.xml").read_bytes()
    sbd = build_sbd(sbdh_from_ubl(document, creation=datetime.now(UTC)), document)

    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(size if size is not None and size >= 0 else 7, 7))

    stream = Trickle(b"junk before the SBD" + sbd)
    stream.seek(len(b"junk before the SBD"))
    out = io.BytesIO()
    span = extract_business_document(stream, out)
    assert out.getvalue() == _extract(sbd)
    assert span.start == len(b"junk before the SBD") + sbd.index(b"<Invoice")
    assert b"".join(iter_business_document(stream, span)) == out.getvalue()


@pytest.mark.parametrize(("sbd", "words"), [
    (b'<!DOCTYPE x [<!ENTITY e "boom">]><sh:StandardBusinessDocument xmlns:sh="' + SBDH_NS.encode()
     + b'"/>', "DOCTYPE"),
    (_envelope(b'<Doc xmlns="urn:x">&e;</Doc>'), "not well-formed"),
    (_envelope(b'<Doc xmlns="urn:x">'), "not well-formed"),
    (_envelope(b'<Doc xmlns="urn:x"><p:a/></Doc>'), "not well-formed"),
    (_envelope(b""), "no business document"),
    (_envelope(b'<Doc xmlns="urn:x"/><Doc xmlns="urn:x"/>'), "more than one"),
    (b'<Invoice xmlns="urn:x"/>', "root element"),
    (b'<sh:StandardBusinessDocument xmlns:sh="' + SBDH_NS.encode() + b'"><Doc/></sh:StandardBusinessDocument>',
     "StandardBusinessDocumentHeader"),
    (b'<?xml version="1.0" encoding="x-no-such"?><a/>', "encoding"),
])
def test_broken_envelopes_are_refused_with_a_reason(sbd: bytes, words: str) -> None:
    with pytest.raises(SbdhError) as err:
        _extract(sbd)
    assert words in str(err.value)
    assert err.value.code in ("invalid-sbd-xml", "missing-sbdh")


def test_a_changed_blob_is_noticed_while_copying() -> None:
    sbd = _envelope(b'<Doc xmlns="urn:x">' + b"<a/>" * 100 + b"</Doc>")
    span = locate_business_document(io.BytesIO(sbd))
    with pytest.raises(SbdhError, match="ended before"):
        b"".join(iter_business_document(io.BytesIO(sbd[: span.end - 10]), span))


def test_memory_stays_flat_for_a_large_document(vectors: Path, tmp_path: Path) -> None:
    document = (vectors / "bis" / "base-example.xml").read_bytes()
    line_start = document.index(b"<cac:InvoiceLine>")
    line = document[line_start:document.index(b"</cac:InvoiceLine>") + len(b"</cac:InvoiceLine>")]
    large = document[:line_start] + line * (4_000_000 // len(line)) + document[line_start:]
    sbd_path = tmp_path / "large.sbd.xml"
    sbd_path.write_bytes(build_sbd(sbdh_from_ubl(large, creation=datetime.now(UTC)), large))

    class Counting(io.RawIOBase):
        def __init__(self) -> None:
            self.size = 0

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.size += len(data)
            return len(data)

    out = Counting()
    tracemalloc.start()
    try:
        with sbd_path.open("rb") as stream:
            extract_business_document(stream, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.size == len(DECLARATION) + len(large) - len(b'<?xml version="1.0" encoding="UTF-8"?>\n') - 1
    assert peak < 1_000_000, f"{peak} bytes at peak for a {len(large)} byte document"
