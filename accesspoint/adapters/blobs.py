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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1 << 16
_KEY = re.compile(r"[0-9a-f]{32}")
_FANOUT = re.compile(r"[0-9a-f]{2}")
TEMP_PREFIX = ".incoming-"


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
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=TEMP_PREFIX)
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

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """(key, mtime) of every complete blob; files that are no blob of ours (temp files, strays) are skipped.

        Files may come and go while this runs: one deleted meanwhile is simply not listed."""
        for path in self._fanout_files():
            if _KEY.fullmatch(path.name) and path.parent.name == path.name[2:4] \
                    and path.parent.parent.name == path.name[:2]:
                mtime = self._mtime(path)
                if mtime is not None:
                    yield path.name, mtime

    def iter_temp_files(self) -> Iterator[tuple[Path, float]]:
        """(path, mtime) of every unfinished `put` (a crash mid-write leaves one behind)."""
        for path in self._fanout_files():
            if path.name.startswith(TEMP_PREFIX):
                mtime = self._mtime(path)
                if mtime is not None:
                    yield path, mtime

    def delete_temp_file(self, path: Path) -> None:
        """Remove a file `iter_temp_files` listed; refuses anything else so a caller cannot delete a blob by path."""
        if path.parent.parent.parent != self.root or not path.name.startswith(TEMP_PREFIX):
            raise BlobKeyError(f"{path} is not a temporary file of the blob store {self.root}")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _fanout_files(self) -> Iterator[Path]:
        for first in self._subdirs(self.root):
            for second in self._subdirs(first):
                try:
                    entries = list(os.scandir(second))
                except FileNotFoundError:
                    continue
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        yield Path(entry.path)

    @staticmethod
    def _subdirs(directory: Path) -> list[Path]:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return []
        return sorted(Path(e.path) for e in entries if _FANOUT.fullmatch(e.name) and e.is_dir(follow_symlinks=False))

    @staticmethod
    def _mtime(path: Path) -> float | None:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return None

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
