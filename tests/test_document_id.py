"""The business document's own ID (cbc:ID, the invoice number) out of a UBL document or an SBD, streaming."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from accesspoint.core.sbdh import build_sbd, business_document_id, sbdh_from_ubl

INVOICE = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" ' \
          b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2" ' \
          b'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2">'


def test_the_id_of_every_bis_example_alone_and_in_its_envelope(vectors: Path) -> None:
    for path in sorted((vectors / "bis").glob("*.xml")):
        document = path.read_bytes()
        expected = document.split(b"<cbc:ID>", 1)[1].split(b"</cbc:ID>", 1)[0].decode()
        sbd = build_sbd(sbdh_from_ubl(document, creation=datetime.now(UTC)), document)
        assert business_document_id(io.BytesIO(document)) == expected, path.name
        assert business_document_id(io.BytesIO(sbd)) == expected, path.name


def test_only_the_root_s_own_id_counts() -> None:
    nested = INVOICE + b"<cbc:CustomizationID>x</cbc:CustomizationID><cac:OrderReference><cbc:ID>PO-1</cbc:ID>" \
                       b"</cac:OrderReference><cbc:ID>late</cbc:ID></Invoice>"
    assert business_document_id(io.BytesIO(nested)) is None  # an aggregate came first: past the header fields
    assert business_document_id(io.BytesIO(INVOICE + b"<cbc:ID>  INV-7 </cbc:ID></Invoice>")) == "INV-7"
    assert business_document_id(io.BytesIO(INVOICE + b"<cbc:ID/></Invoice>")) is None


def test_no_id_from_what_is_not_ubl() -> None:
    for data in (b"", b"not xml", b"<Order xmlns='urn:x'><ID>1</ID></Order>", b"<a><b>"):
        assert business_document_id(io.BytesIO(data)) is None, data
