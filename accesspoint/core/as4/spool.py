"""Re-readable views on the spooled temporary files that carry payloads through the AS4 pipeline.

A payload is written once (gzip output, decrypted attachment) and read several times (digest, encryption,
gunzip), by code that closes what it opens. A view is an independent read handle from the start of the file
whose close leaves the file itself open, so the payload never has to be copied or held in memory whole.
"""

from __future__ import annotations

import io
from typing import IO, BinaryIO, cast


class _View(io.RawIOBase):
    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        # Other views move the shared file position, so every read seeks to this view's own position first.
        self._source.seek(self._position)
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def reader(source: IO[bytes]) -> BinaryIO:
    """A fresh read handle on the whole of `source`; closing it does not close `source`."""
    return cast(BinaryIO, io.BufferedReader(_View(source)))

