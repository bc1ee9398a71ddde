"""Test streams: short reads, read accounting, and large content generated on the fly instead of held in memory."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator


class Trickle(io.RawIOBase):
    """Serves `data` at most `step` bytes per read, like a socket delivering a request in small pieces."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        limit = self._step if size is None or size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._pos:self._pos + limit])
        self._pos += len(chunk)
        self.bytes_read += len(chunk)
        return chunk


class Generated(io.RawIOBase):
    """A read-only stream over an iterator of byte pieces, produced only as far as the reader asks."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces: Iterator[bytes] = iter(pieces)
        self._buffer = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._buffer:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._buffer = piece
        if size is None or size < 0:
            size = len(self._buffer)
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        self.bytes_read += len(chunk)
        return chunk


class Sink(io.RawIOBase):
    """A writable stream that only counts, so that tests of huge outputs hold nothing."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)
