"""The filesystem blob store: durable, atomic, confined to its root."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accesspoint.adapters.blobs import CHUNK, BlobKeyError, BlobNotFoundError, FilesystemBlobStore


class _Breaks(io.RawIOBase):
    """A stream that yields `good` bytes and then fails, like a connection dropped mid-upload."""

    def __init__(self, good: bytes) -> None:
        self._data = io.BytesIO(good)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._data.readinto(buffer)
        if n == 0:
            raise ConnectionResetError("peer went away")
        return n


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_streams_and_reports_size_and_sha256(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    payload = os.urandom(3 * CHUNK + 17)
    ref = store.put(io.BytesIO(payload))
    assert ref.size == len(payload)
    assert ref.sha256 == hashlib.sha256(payload).hexdigest()
    assert store.exists(ref.key)
    with store.open(ref.key) as blob:
        assert blob.read() == payload
    assert store.path(ref.key) == tmp_path / "blobs" / ref.key[:2] / ref.key[2:4] / ref.key
    assert _files(tmp_path) == [store.path(ref.key)]


def test_same_content_gets_independent_blobs(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    first, second = store.put(io.BytesIO(b"<Invoice/>")), store.put(io.BytesIO(b"<Invoice/>"))
    assert first.key != second.key
    store.delete(first.key)
    assert not store.exists(first.key)
    with store.open(second.key) as blob:
        assert blob.read() == b"<Invoice/>"


def test_empty_stream_is_a_blob_too(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    ref = store.put(io.BytesIO(b""))
    assert (ref.size, ref.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert store.exists(ref.key)


def test_a_stream_failing_midway_leaves_nothing_visible(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        store.put(io.BufferedReader(_Breaks(os.urandom(2 * CHUNK + 5))))
    assert _files(tmp_path) == []


def test_a_crash_before_the_rename_leaves_nothing_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FilesystemBlobStore(tmp_path)
    keys: list[str] = []
    original_path = store.path

    def remember(key: str) -> Path:
        keys.append(key)
        return original_path(key)

    def power_cut(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "path", remember)
    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="disk full"):
        store.put(io.BytesIO(b"payload"))
    monkeypatch.undo()
    assert keys and not store.exists(keys[0])
    assert _files(tmp_path) == []


def test_file_and_directories_are_fsynced_before_and_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    log: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        log.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    ref = store.put(io.BytesIO(b"<StandardBusinessDocument/>"))
    final = store.path(ref.key)
    rename = log.index(("replace", str(final)))
    # the data reaches the disk under its temporary name before it becomes visible ...
    before = [path for op, path in log[:rename] if op == "fsync"]
    assert any(Path(path).parent == final.parent and Path(path).name.startswith(".incoming-") for path in before)
    # ... the new directories are recorded in their parents ...
    assert str(tmp_path / "blobs") in before and str(final.parent.parent) in before
    # ... and the rename itself is made durable
    assert ("fsync", str(final.parent)) in log[rename + 1 :]

    log.clear()
    store.delete(ref.key)
    assert log == [("fsync", str(final.parent))]


@pytest.mark.parametrize(
    "key",
    [
        "../../../etc/passwd",
        "/etc/passwd",
        "ab/cd/0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcde/",
        "..",
        "",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcdef\n",
        "0123456789abcdef0123456789abcdef\x00",
        ".incoming-0123456789abcdef012345",
    ],
)
def test_keys_it_never_issued_are_rejected(tmp_path: Path, key: str) -> None:
    store = FilesystemBlobStore(tmp_path)
    for operation in (store.open, store.exists, store.delete):
        with pytest.raises(BlobKeyError, match="invalid blob key"):
            operation(key)


def test_missing_blob(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    key = "0123456789abcdef0123456789abcdef"
    assert not store.exists(key)
    with pytest.raises(BlobNotFoundError, match=key):
        store.open(key)
    store.delete(key)  # already gone is fine: retention may run twice


@settings(max_examples=25, deadline=None)
@given(payload=st.binary(max_size=3 * CHUNK), read_size=st.integers(min_value=1, max_value=2 * CHUNK))
def test_whatever_goes_in_comes_out(tmp_path_factory: pytest.TempPathFactory, payload: bytes, read_size: int) -> None:
    store = FilesystemBlobStore(tmp_path_factory.mktemp("blobs"))

    class Trickle(io.RawIOBase):
        # short reads, as from a socket
        def __init__(self) -> None:
            self._data = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            return self._data.readinto(buffer[:read_size])

    stream: BinaryIO = io.BufferedReader(Trickle(), buffer_size=read_size)
    ref = store.put(stream)
    with store.open(ref.key) as blob:
        assert blob.read() == payload
    assert ref.size == len(payload)


def test_a_non_blocking_stream_without_data_is_not_taken_for_the_end(tmp_path: Path) -> None:
    class NothingYet(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> None:  # type: ignore[override]
            return None

    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(BlockingIOError, match="non-blocking"):
        store.put(NothingYet())  # type: ignore[arg-type]
    assert _files(tmp_path) == []


def test_concurrent_puts_never_mix_payloads(tmp_path: Path) -> None:
    # oxalis-ng #18: parallel inbound messages corrupted each other's stored documents
    store = FilesystemBlobStore(tmp_path)
    payloads = [os.urandom(CHUNK + n) for n in range(16)]
    refs: dict[int, str] = {}

    def put(n: int) -> None:
        refs[n] = store.put(io.BytesIO(payloads[n])).key

    threads = [threading.Thread(target=put, args=(n,)) for n in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(refs.values())) == len(payloads)
    for n, key in refs.items():
        with store.open(key) as blob:
            assert blob.read() == payloads[n]
