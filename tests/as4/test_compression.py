"""gzip out and bounded gunzip in: Java's member, round trips, bombs, corrupt and truncated data."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tempfile
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accesspoint.core.as4.compression import RATIO_FLOOR_BYTES, gunzip_bounded, gzip_bytes, gzip_stream
from accesspoint.core.as4.errors import DECOMPRESSION_FAILURE, As4Error
from accesspoint.core.as4.mime import OutgoingAttachment, parse_message, write_message
from base.safexml import parse_bytes
from tests.as4.streams import Generated, Sink, Trickle

SAMPLE = b"<Invoice>" + b"<Line>123.45 EUR</Line>\r\n" * 2000 + b"</Invoice>"


def gunzip(data: bytes, *, max_bytes: int = 50 << 20, max_ratio: float = 1000, step: int = 1 << 16) -> bytes:
    out = io.BytesIO()
    size = gunzip_bounded(Trickle(data, step), out, max_bytes=max_bytes, max_ratio=max_ratio)
    assert size == len(out.getvalue())
    return out.getvalue()


def failure(data: bytes, **kwargs: float) -> str:
    with pytest.raises(As4Error) as exc:
        gunzip(data, **kwargs)  # type: ignore[arg-type]
    assert exc.value.code == DECOMPRESSION_FAILURE
    assert exc.value.http_status == 200  # an ebMS Error signal, like phase4
    return exc.value.description


def zeros_gzip(total: int) -> Iterator[bytes]:
    """A gzip member of `total` zero bytes, compressed only as far as it is read."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    for _ in range(total // len(block)):
        if piece := compressor.compress(block):
            yield piece
    yield compressor.flush()


def test_java_written_member_is_accepted(vectors: Path) -> None:
    data = (vectors / "as4/payloads/java-gzip-sbd.xml.gz").read_bytes()
    assert data[:10] == bytes.fromhex("1f8b0800000000000000")  # Java: MTIME 0, OS 0
    out = gunzip(data, max_ratio=10)
    assert len(out) == 9751
    assert out.count(b"\r\n") == out.count(b"\n") > 0  # CRLF line ends, as INDEX.md says
    assert parse_bytes(out).tag == "{http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader}" \
        "StandardBusinessDocument"


def test_gzip_output_is_a_deterministic_rfc1952_member() -> None:
    member = gzip_bytes(SAMPLE)
    assert member[:4] == b"\x1f\x8b\x08\x00"  # magic, deflate, no flags
    assert member[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
    assert struct.unpack("<II", member[-8:]) == (zlib.crc32(SAMPLE), len(SAMPLE))
    assert gzip.decompress(member) == SAMPLE
    assert gzip_bytes(SAMPLE) == member
    dst = io.BytesIO()
    assert gzip_stream(Trickle(SAMPLE, 1000), dst) == len(member)
    assert dst.getvalue() == member


def test_round_trip_through_our_own_functions() -> None:
    payload = os.urandom(300_000) + SAMPLE
    compressed = io.BytesIO()
    gzip_stream(io.BytesIO(payload), compressed)
    assert gunzip(compressed.getvalue(), step=777) == payload


def test_concatenated_members_are_decompressed_in_order() -> None:
    assert gunzip(gzip_bytes(b"first ") + gzip_bytes(b"") + gzip_bytes(b"second"), step=3) == b"first second"


def test_gzip_bomb_stops_early_with_little_memory() -> None:
    source = Generated(zeros_gzip(1 << 30))  # 1 GiB of zeros, about 1 MB compressed, never stored
    sink = Sink()
    tracemalloc.start()
    try:
        with pytest.raises(As4Error) as exc:
            gunzip_bounded(source, sink, max_bytes=500 << 20, max_ratio=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.value.code == DECOMPRESSION_FAILURE
    assert "expands more than 100 times" in exc.value.description
    assert sink.size < 10 << 20, f"{sink.size} bytes were written before the bomb was stopped"
    assert source.bytes_read < 200_000
    assert peak < 2 << 20, f"stopping the bomb allocated {peak} bytes at peak"


def test_absolute_limit_applies_even_to_modest_ratios() -> None:
    payload = os.urandom(3 << 20)
    description = failure(gzip_bytes(payload), max_bytes=2 << 20, max_ratio=1000)
    assert f"exceeds the limit of {2 << 20} bytes" in description
    assert gunzip(gzip_bytes(payload), max_bytes=3 << 20) == payload  # exactly at the limit is fine


def test_known_compressed_size_fixes_the_ratio_bound_from_the_start() -> None:
    member = b"".join(zeros_gzip(8 << 20))
    sink = Sink()
    with pytest.raises(As4Error) as exc:
        gunzip_bounded(io.BytesIO(member), sink, max_bytes=1 << 30, max_ratio=200, compressed_size=len(member))
    assert exc.value.code == DECOMPRESSION_FAILURE
    assert f"from a compressed size of {len(member)} bytes" in exc.value.description
    assert sink.size <= max(200 * len(member), RATIO_FLOOR_BYTES)
    assert gunzip_bounded(io.BytesIO(member), Sink(), max_bytes=1 << 30, max_ratio=2000,
                          compressed_size=len(member)) == 8 << 20


def test_small_regular_payloads_are_exempt_from_the_ratio() -> None:
    payload = bytes(RATIO_FLOOR_BYTES)  # compresses about 1000:1
    assert gunzip(gzip_bytes(payload), max_ratio=5) == payload
    assert "expands more than 5 times" in failure(gzip_bytes(payload + b"\x00"), max_ratio=5)


@pytest.mark.parametrize(("data", "words"), [
    (b"", "empty"),
    (SAMPLE, "not valid gzip"),
    (zlib.compress(SAMPLE), "not valid gzip"),  # zlib wrapper instead of gzip
    (gzip_bytes(SAMPLE) + b"garbage", "trailing data"),
    (gzip_bytes(SAMPLE) + b"\x1f", "trailing data"),
    (gzip_bytes(SAMPLE) + b"\x00" * 8, "trailing data"),
    (gzip_bytes(SAMPLE)[:-8] + struct.pack("<II", zlib.crc32(SAMPLE) ^ 1, len(SAMPLE)), "not valid gzip"),
    (gzip_bytes(SAMPLE)[:-4] + struct.pack("<I", len(SAMPLE) + 1), "not valid gzip"),
    (gzip_bytes(SAMPLE)[:30] + b"\xff\xff\xff" + gzip_bytes(SAMPLE)[33:], "not valid gzip"),
])
def test_corrupt_data_is_decompression_failure(data: bytes, words: str) -> None:
    assert words in failure(data)


def test_every_truncation_is_decompression_failure() -> None:
    member = gzip_bytes(SAMPLE)
    for cut in range(1, len(member)):
        with pytest.raises(As4Error) as exc:
            gunzip(member[:cut], step=97)
        assert exc.value.code == DECOMPRESSION_FAILURE
    assert "truncated" in failure(member[:-1])


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=20_000), step=st.integers(1, 5000), members=st.integers(1, 3))
def test_round_trip_property(payload: bytes, step: int, members: int) -> None:
    compressed = io.BytesIO()
    gzip_stream(Trickle(payload, step), compressed)
    assert gunzip(compressed.getvalue() * members, step=step) == payload * members


@settings(max_examples=300, deadline=None)
@given(data=st.data(), step=st.integers(1, 500))
def test_mutated_gzip_raises_only_decompression_failure(data: st.DataObject, step: int) -> None:
    mutated = bytearray(gzip_bytes(SAMPLE[:3000]))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(mutated) - 1))
        mutated[pos] = data.draw(st.integers(0, 255))
    try:
        out = gunzip(bytes(mutated), step=step)
    except As4Error as exc:
        assert exc.code == DECOMPRESSION_FAILURE
        return
    # Only mutations that zlib cannot see (header flags, OS byte, MTIME) may pass, and then the content is intact.
    assert out == SAMPLE[:3000]


def test_100_mb_gzip_attachment_received_and_gunzipped_in_bounded_memory() -> None:
    # MIME parsing plus bounded gunzip of a 100 MB payload: the part of the receive path these modules own.
    block = os.urandom(1 << 20)  # repeats 1 MiB apart, beyond deflate's 32 KiB window: barely compressible

    def gzipped_payload() -> Iterator[bytes]:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        for _ in range(100):
            yield compressor.compress(block)
        yield compressor.flush()

    content_type, chunks = write_message(b"<soap/>", [OutgoingAttachment("a@x", Generated(gzipped_payload()))])
    tracemalloc.start()
    try:
        with parse_message(Generated(chunks), content_type) as message:
            out = tempfile.SpooledTemporaryFile(max_size=1 << 20)
            with out:
                size = gunzip_bounded(message.attachments[0].open(), out, max_bytes=200 << 20, max_ratio=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == 100 << 20
    assert peak < 4 << 20, f"receiving and gunzipping 100 MB allocated {peak} bytes at peak"
