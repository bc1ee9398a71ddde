"""AS4 payload compression: RFC 1952 gzip out, bounded gunzip in (shared/docs/as4.md pitfall 13).

Peppol compresses every attachment with gzip (`CompressionType` application/gzip). Outgoing members carry MTIME 0,
so the same payload always gives the same bytes (Java writes MTIME 0 as well). Incoming data is decompressed as a
stream with two bounds, an absolute size and a compression ratio, checked while decompressing, so a gzip bomb is
stopped after a few megabytes and answered with EBMS:0303 DecompressionFailure instead of filling memory or disk.

Several concatenated gzip members are accepted and decompressed one after the other: RFC 1952 defines a gzip file
as a series of members, and Java's GZIPInputStream (phase4's reader) and Python's gzip module both read them. Any
other data after a member is rejected as trailing garbage; Java would silently ignore it, but data we cannot account
for must not be passed on as part of a signed business document.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

from accesspoint.core.as4.errors import DECOMPRESSION_FAILURE, As4Error

CHUNK = 64 << 10
COMPRESS_LEVEL = 6  # zlib's default, and what java.util.zip.Deflater uses by default
GZIP_WBITS = 31  # 16 + 15: gzip wrapper, 32 KiB window
GZIP_MAGIC = b"\x1f\x8b"
# Output up to this size is never refused for its ratio. The ratio bound exists to stop amplification; below 1 MiB
# amplification is harmless, while small, very regular XML (or an empty payload) can legitimately exceed any ratio.
RATIO_FLOOR_BYTES = 1 << 20


def gzip_stream(src: BinaryIO, dst: BinaryIO) -> int:
    """Compress `src` into one gzip member written to `dst` (MTIME 0). Returns the number of bytes written."""
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, GZIP_WBITS)
    written = 0
    while chunk := src.read(CHUNK):
        written += dst.write(compressor.compress(chunk))
    written += dst.write(compressor.flush())
    return written


def gzip_bytes(data: bytes) -> bytes:
    """One gzip member (MTIME 0) holding `data`; byte-identical to what `gzip_stream` writes for the same input."""
    return zlib.compress(data, COMPRESS_LEVEL, GZIP_WBITS)


def _failure(description: str) -> As4Error:
    return As4Error(DECOMPRESSION_FAILURE, description)


class _BoundedGunzip:
    def __init__(self, dst: BinaryIO, max_bytes: int, max_ratio: float, compressed_size: int | None) -> None:
        self.dst = dst
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.compressed_size = compressed_size
        self.fed = 0  # compressed bytes read from the source so far
        self.out = 0  # decompressed bytes written so far
        self.members = 1
        self.inflater = zlib.decompressobj(GZIP_WBITS)
        self._pending_header = b""  # the start of a possible next member, until its magic bytes can be checked

    def _limit(self) -> float:
        # With a known compressed size the ratio bound is fixed from the start; otherwise it grows with the input
        # read so far, which stops a bomb as soon as its output outruns its input.
        basis = self.compressed_size if self.compressed_size is not None else self.fed
        return min(self.max_bytes, max(self.max_ratio * basis, RATIO_FLOOR_BYTES))

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self.out += len(data)
        if self.out > self.max_bytes:
            raise _failure(f"the decompressed payload exceeds the limit of {self.max_bytes} bytes")
        if self.out > self._limit():
            basis = (f"a compressed size of {self.compressed_size} bytes" if self.compressed_size is not None
                     else f"{self.fed} compressed bytes read so far")
            raise _failure(f"the payload expands more than {self.max_ratio:g} times when decompressed "
                           f"({self.out} bytes from {basis}); refusing a likely decompression bomb")
        self.dst.write(data)

    def feed(self, data: bytes) -> None:
        while data:
            if self.inflater.eof:
                data = self._next_member(data)
                if not data:
                    return
            try:
                while True:
                    # max_length keeps every step at most CHUNK bytes, so the bounds are checked before a bomb's
                    # output is ever materialised in one piece.
                    produced = self.inflater.decompress(data, CHUNK)
                    self._emit(produced)
                    data = self.inflater.unconsumed_tail
                    if self.inflater.eof or (not data and len(produced) < CHUNK):
                        break
            except zlib.error as exc:
                raise _failure(f"the payload is not valid gzip data (gzip member {self.members}: {exc})") from exc
            if self.inflater.eof:
                data = self.inflater.unused_data

    def _next_member(self, data: bytes) -> bytes:
        self._pending_header += data
        if len(self._pending_header) < len(GZIP_MAGIC):
            return b""
        data, self._pending_header = self._pending_header, b""
        if not data.startswith(GZIP_MAGIC):
            raise _failure(f"the payload has {len(data)} or more bytes of trailing data after gzip member "
                           f"{self.members} that are not another gzip member")
        self.members += 1
        self.inflater = zlib.decompressobj(GZIP_WBITS)
        return data

    def finish(self) -> None:
        if self._pending_header:
            raise _failure(f"the payload has trailing data after gzip member {self.members} that is not another "
                           "gzip member")
        if not self.inflater.eof:
            if self.fed == 0:
                raise _failure("the payload is empty; expected gzip data")
            raise _failure(f"the gzip data is truncated: gzip member {self.members} ends before its trailer "
                           f"(after {self.fed} compressed bytes)")


def gunzip_bounded(src: BinaryIO, dst: BinaryIO, *, max_bytes: int, max_ratio: float,
                   compressed_size: int | None = None) -> int:
    """Decompress gzip data from `src` into `dst`; returns the number of decompressed bytes.

    Raises As4Error EBMS:0303 for data that is not gzip, corrupt (CRC or length mismatch included), truncated or
    followed by garbage, and as soon as the output exceeds `max_bytes` or `max_ratio` times the compressed size
    (`compressed_size` if given, else the compressed bytes read so far; output below 1 MiB is exempt from the ratio).
    On failure `dst` holds a partial result that the caller must discard.
    """
    if max_bytes < 0 or max_ratio <= 0:
        raise ValueError("max_bytes must be >= 0 and max_ratio > 0")
    state = _BoundedGunzip(dst, max_bytes, max_ratio, compressed_size)
    while chunk := src.read(CHUNK):
        state.fed += len(chunk)
        state.feed(chunk)
    state.finish()
    return state.out


__all__ = ["RATIO_FLOOR_BYTES", "gunzip_bounded", "gzip_bytes", "gzip_stream"]
