"""Hardened XML parsing for everything that arrives from outside (SMP answers, AS4 headers, SBDH).

No DTDs, no entity resolution, no network, bounded size. This is the lowest layer that reads XML,
so accesspoint uses it too. Signed XML is verified on the tree parsed from the bytes received;
nothing parsed here is ever re-serialised for verification.
"""

from __future__ import annotations

from typing import IO

from lxml import etree

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class XmlError(ValueError):
    """Input is not acceptable XML (malformed, a DTD, too large)."""


def _parser(huge_tree: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        remove_comments=False,
        remove_pis=False,
        remove_blank_text=False,
        huge_tree=huge_tree,
    )


def _reject_doctype(tree: etree._ElementTree) -> None:
    if tree.docinfo.doctype:
        raise XmlError("DOCTYPE declarations are not accepted")


def parse_bytes(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, *, huge_tree: bool = False) -> etree._Element:
    """Parse a whole document from bytes; returns the root element. `huge_tree` lifts libxml2's limits on one
    text node (10 MB) and on depth, for documents whose size `max_bytes` already bounds (entities stay off)."""
    if len(data) > max_bytes:
        raise XmlError(f"XML document larger than {max_bytes} bytes")
    try:
        root = etree.fromstring(data, parser=_parser(huge_tree))
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"malformed XML: {exc}") from None
    _reject_doctype(root.getroottree())
    return root


def parse_stream(stream: IO[bytes], max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse a whole document from a binary stream, reading at most max_bytes."""
    data = stream.read(max_bytes + 1)
    return parse_bytes(data, max_bytes)


def iterparse(stream: IO[bytes], events: tuple[str, ...] = ("start", "end"), **kwargs: object):  # type: ignore[no-untyped-def]
    """lxml.iterparse with the same hardening, for documents too large to hold (SBD payloads)."""
    return etree.iterparse(
        stream, events=events, resolve_entities=False, no_network=True, load_dtd=False,
        dtd_validation=False, huge_tree=True, **kwargs,
    )
