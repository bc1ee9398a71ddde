"""Peppol Business Message Envelope 2.0 (SBDH): read, derive from UBL, write, extract (shared/docs/as4.md section 6).

The package follows the envelope's life: `model` (the `Sbdh` value, `SbdhError`, the envelope's constants),
`reading` (peppol-commons' PeppolSBDHDataReader rules), `ubl` (deriving a header from a UBL document), `writing`
(our header in front of the business document bytes exactly as received), `extraction` (the business document
out of a stored SBD, by byte offsets) and `document_id` (the business document's own cbc:ID). This module is its
public surface.
"""

from accesspoint.core.sbdh.document_id import business_document_id
from accesspoint.core.sbdh.extraction import (
    DocumentSpan,
    document_length,
    iter_business_document,
    locate_business_document,
)
from accesspoint.core.sbdh.model import SBDH_NS, Sbdh, SbdhError, format_xs_datetime, parse_xs_datetime
from accesspoint.core.sbdh.reading import parse_sbdh
from accesspoint.core.sbdh.ubl import sbdh_from_ubl
from accesspoint.core.sbdh.writing import build_sbd, write_sbd

__all__ = [
    "SBDH_NS",
    "DocumentSpan",
    "Sbdh",
    "SbdhError",
    "build_sbd",
    "business_document_id",
    "document_length",
    "format_xs_datetime",
    "iter_business_document",
    "locate_business_document",
    "parse_sbdh",
    "parse_xs_datetime",
    "sbdh_from_ubl",
    "write_sbd",
]
