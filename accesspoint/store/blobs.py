"""Payload storage: a small interface and its filesystem implementation.

A blob is visible under its key only once it is complete and on disk: the receipt for an inbound message is
sent after `put` returned (and the database committed), so a crash at any point never leaves a receipt
without its stored document.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1 << 16
_KEY = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class BlobRef:
    key: str
    size: int
    sha256: str


class BlobKeyError(ValueError):
    """A key that this store never hands out (and that could point outside it)."""


class BlobNotFoundError(LookupError):
    """No blob under this key."""


class BlobStore(Protocol):
    def put(self, stream: BinaryIO) -> BlobRef:
        """Store everything `stream` yields; return only once it is durable."""
        ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


def _fsync_dir(path: Path) -> None:
    # a rename or a new directory entry is durable only once the directory itself is synced
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemBlobStore:
    """Blobs as files under `root/ab/cd/<key>`, keys being random uuid4 hex.

    Random keys rather than content addresses: two messages with the same payload stay independent, so deleting
    one (retention) never removes the other's evidence.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise BlobKeyError(f"invalid blob key {key!r}: expected 32 lower-case hex characters")
        return self.root / key[:2] / key[2:4] / key

    def put(self, stream: BinaryIO) -> BlobRef:
        key = uuid.uuid4().hex
        final = self.path(key)
        self._make_dirs(final.parent)
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = stream.read(CHUNK)
                    if chunk is None:
                        # a non-blocking stream with nothing ready: ending here would store a truncated payload
                        raise BlockingIOError("blob stream had no data ready (non-blocking); pass a blocking stream")
                    if not chunk:
                        break
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(final.parent)
        return BlobRef(key=key, size=size, sha256=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {key} in {self.root}") from None

    def delete(self, key: str) -> None:
        """Remove the blob; deleting one that is already gone is not an error (retention may run twice)."""
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def _make_dirs(self, directory: Path) -> None:
        # create ab/ and ab/cd/ level by level, syncing each parent, so a new directory survives a crash
        missing: list[Path] = []
        probe = directory
        while probe != self.root and not probe.is_dir():
            missing.append(probe)
            probe = probe.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            _fsync_dir(path.parent)
