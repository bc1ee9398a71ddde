"""The business document's own ID (UBL `cbc:ID`: the invoice or credit note number), read from an SBD or a bare
UBL document so that a message can be found by the number its sender and receiver know it by."""

from __future__ import annotations

from typing import IO

from lxml import etree

from accesspoint.core.sbdh.model import SBDH_NS, UBL_CBC
from base.safexml import XmlError, iterparse

_ID = f"{{{UBL_CBC}}}ID"
_HEADER = f"{{{SBDH_NS}}}StandardBusinessDocumentHeader"
# UBL puts its extensions and basic header fields (cbc:ID among them) before the first aggregate (cac:) child
_HEADER_FIELDS = (UBL_CBC, "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2")


def business_document_id(stream: IO[bytes]) -> str | None:
    """The `cbc:ID` child of the business document's root; None when it has none (not UBL, or not XML).

    Streams from the start and stops at the ID or at the first child past UBL's header fields, so a large
    document is not read through.
    """
    depth, document_depth, in_document = 0, 1, False
    try:
        for event, element in iterparse(stream, events=("start", "end")):
            if event == "end":
                if in_document and depth == document_depth + 1 and element.tag == _ID:
                    return (element.text or "").strip() or None
                depth -= 1
                element.clear()
                continue
            depth += 1
            if depth == 1 and element.tag == f"{{{SBDH_NS}}}StandardBusinessDocument":
                document_depth = 2  # the business document follows the header inside the envelope
            if depth == document_depth:
                in_document = element.tag != _HEADER
            elif in_document and depth == document_depth + 1 and etree.QName(element).namespace not in _HEADER_FIELDS:
                return None
    except (etree.XMLSyntaxError, XmlError):
        return None
    return None
