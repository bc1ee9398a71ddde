"""A payload that is not exactly one well-formed SBD is refused before the receipt: EBMS:0004 (phase4's answer for a
first attachment it cannot read as an SBD), nothing stored, and the next valid message is accepted.

The attacks send what the hostile-input run found receipted: a second document in a second gzip member or after the
SBD's root element (once addressed to a participant of another organisation), and trailing garbage; and an SBD cut
off inside its business document, which the header reader, stopping at the document's start tag, never saw.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import os
import tracemalloc
from collections.abc import Callable
from typing import BinaryIO

import pytest

from accesspoint.core.as4.compression import gzip_bytes
from accesspoint.core.peppol import outbound
from accesspoint.core.sbdh import Sbdh, build_sbd, locate_business_document
from accesspoint.core.sbdh.extraction import MAX_DEPTH
from base.chunks import chunk_stream
from smp.identifiers import ParticipantId
from tests.hostile.as4_support import inspected_code, receipted, refused_with, still_accepts_valid_traffic
from tests.receiving.conftest import Receiver

OTHER_ORGANISATION = "0002:FR99999"
# The header reader parses its input a buffer at a time and stops at the business document's start tag, so what
# follows a small SBD is seen by chance; what follows a large one never was. The tests' invoices are large.
PADDING = 1 << 20


@pytest.fixture
def invoice(invoice: bytes) -> bytes:
    """The example invoice with a 1 MiB comment before its end tag (random, so that it does not compress into a
    likely bomb)."""
    end = invoice.rindex(b"</Invoice>")
    return invoice[:end] + b"<!--" + base64.b64encode(os.urandom(PADDING * 3 // 4)) + b"-->\n" + invoice[end:]


def gzip_members_at(*cuts: int) -> Callable[[BinaryIO, BinaryIO], int]:
    """A stand-in for the sender's gzip that writes its input as several gzip members, cut at these offsets."""

    def compress(src: BinaryIO, dst: BinaryIO) -> int:
        data = src.read()
        bounds = [0, *cuts, len(data)]
        return sum(dst.write(gzip_bytes(data[a:b])) for a, b in itertools.pairwise(bounds))

    return compress


@pytest.fixture
def second_sbd(rx: Receiver, sbdh: Sbdh, invoice: bytes) -> bytes:
    """A valid SBD for a participant that another organisation of this gateway serves."""
    rx.seed(OTHER_ORGANISATION)
    other = dataclasses.replace(sbdh, receiver=ParticipantId("iso6523-actorid-upis", OTHER_ORGANISATION),
                                instance_identifier=sbdh.instance_identifier + "-b")
    return build_sbd(other, invoice)


def test_a_second_sbd_in_a_second_gzip_member_is_refused(rx: Receiver, sbd: bytes, sbdh: Sbdh, second_sbd: bytes,
                                                          invoice: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbound, "gzip_stream", gzip_members_at(len(sbd)))
    with rx.build(sbd + second_sbd, sbdh=sbdh) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0004")
    assert "not well-formed" in str(error)
    monkeypatch.undo()
    still_accepts_valid_traffic(rx, invoice)


@pytest.mark.parametrize("after", [
    pytest.param(None, id="second-sbd"),
    pytest.param(b"garbage", id="text"),
    pytest.param(b"<Invoice/>", id="element"),
    pytest.param(b"\x00\x01\x02", id="binary"),
])
def test_content_after_the_sbd_root_element_is_refused(rx: Receiver, sbd: bytes, sbdh: Sbdh, second_sbd: bytes,
                                                       invoice: bytes, after: bytes | None) -> None:
    with rx.build(sbd + (second_sbd if after is None else after), sbdh=sbdh) as message:
        refused_with(rx, rx.send(message), "EBMS:0004")
        assert inspected_code(rx, message) == "EBMS:0004"  # one copy of the check: inspect says the same
    still_accepts_valid_traffic(rx, invoice)


def test_an_sbd_cut_off_inside_its_business_document_is_refused(rx: Receiver, sbd: bytes, sbdh: Sbdh,
                                                                invoice: bytes) -> None:
    cut = sbd[: sbd.rindex(b"</")]  # no closing tags of the invoice and the envelope
    with rx.build(cut, sbdh=sbdh) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0004")
    assert "not well-formed" in str(error)
    still_accepts_valid_traffic(rx, invoice)


def test_a_business_document_nested_deeper_than_the_limit_is_refused(rx: Receiver, sbdh: Sbdh,
                                                                     invoice: bytes) -> None:
    # Each open element costs the whole-document parse memory: nesting is bounded (MAX_DEPTH), the payload size
    # bounds the rest.
    end = invoice.rindex(b"</Invoice>")
    deep = invoice[:end] + b"<x>" * MAX_DEPTH + b"</x>" * MAX_DEPTH + invoice[end:]
    with rx.build(build_sbd(sbdh, deep), sbdh=sbdh) as message:
        error = refused_with(rx, rx.send(message), "EBMS:0004")
    assert f"deeper than {MAX_DEPTH} levels" in str(error)
    still_accepts_valid_traffic(rx, invoice)


def test_comments_and_whitespace_after_the_root_element_are_still_one_document(rx: Receiver, sbd: bytes,
                                                                               sbdh: Sbdh) -> None:
    # XML allows comments, processing instructions and whitespace after the root element: one document still.
    with rx.build(sbd + b"\n<!-- signed by the ERP -->\n<?pi x?>\n", sbdh=sbdh) as message:
        receipted(rx, rx.send(message), message.message_id, message.sent_references)
    [stored] = rx.messages()
    assert stored.document_size is not None


def test_one_document_split_across_gzip_members_is_accepted(rx: Receiver, sbd: bytes, sbdh: Sbdh,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 1952 defines a gzip file as a series of members, and phase4's reader (java.util.zip.GZIPInputStream)
    # reads them as one stream: what matters is that the concatenation is exactly one SBD, checked as above.
    monkeypatch.setattr(outbound, "gzip_stream", gzip_members_at(len(sbd) // 3, len(sbd) // 2))
    with rx.build(sbd, sbdh=sbdh) as message:
        receipted(rx, rx.send(message), message.message_id, message.sent_references)
    [stored] = rx.messages()
    assert stored.payload_size == len(sbd)
    with rx.gateway.blobs.open(stored.blob_key) as blob:
        assert blob.read() == sbd


def test_the_whole_document_parse_is_streamed(sbd: bytes) -> None:
    # What the check costs for a large payload: one pass in 64 KiB pieces, memory flat (the payload itself is on disk).
    block = b"<cbc:Note>" + base64.b64encode(os.urandom(48 << 10)) + b"</cbc:Note>\n"
    invoice_end = sbd.rindex(b"</Invoice>")
    pieces = [sbd[:invoice_end], *([block] * ((100 << 20) // len(block))), sbd[invoice_end:]]
    tracemalloc.start()
    try:
        span = locate_business_document(chunk_stream(pieces))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    added = sum(map(len, pieces[1:-1]))
    assert (span.start, span.end) == (sbd.index(b"<Invoice"), invoice_end + len(b"</Invoice>") + added)
    assert added > 99 << 20 and peak < 8 << 20, f"parsing a 100 MB SBD allocated {peak} bytes at peak"
