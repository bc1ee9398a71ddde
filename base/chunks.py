"""A readable file over an iterable of byte chunks.

The core's recipes take byte chunks (an HTTP body as the edge receives it, a MIME body as `OutgoingMessage.chunks`
yields it), like h11; code that needs a file (the MIME reader, a blob store) reads the chunks through this.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import BinaryIO, cast

BUFFER = 64 << 10


class ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]  # a view: no copy of the rest of a large chunk
        return size


def chunk_stream(chunks: bytes | Iterable[bytes]) -> BinaryIO:
    """A buffered reader over `chunks`; a single bytes value counts as one chunk (not as an iterable of ints)."""
    if isinstance(chunks, bytes | bytearray | memoryview):
        chunks = (bytes(chunks),)
    elif hasattr(chunks, "read"):
        # iterating a file yields lines, which would work but split binary data at random places
        raise TypeError("pass the body as byte chunks (e.g. iter(partial(stream.read, n), b'')), not as a stream")
    return cast(BinaryIO, io.BufferedReader(ChunkReader(chunks), buffer_size=BUFFER))
