"""Orphaned blob cleanup: real files in the blob store, a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from accesspoint.adapters.blobs import BlobKeyError, FilesystemBlobStore
from accesspoint.flows import maintenance
from accesspoint.flows.maintenance import sweep_blobs
from accesspoint.store.models import Direction, Message, MessageState
from accesspoint.worker import TASKS, run_worker
from tests.receiving.conftest import Receiver, ReceiverFactory

HOUR = 3600.0


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def orphan(store: FilesystemBlobStore, *, old: bool) -> str:
    key = store.put(io.BytesIO(b"payload nobody refers to")).key
    if old:
        age(store.path(key), 2 * HOUR)
    return key


def temp_file(store: FilesystemBlobStore, *, old: bool) -> Path:
    """What a crash in the middle of `put` leaves: a hidden temporary file beside the blobs."""
    key = store.put(io.BytesIO(b"x")).key
    directory = store.path(key).parent
    store.delete(key)
    path = directory / f".incoming-{'old' if old else 'new'}{key[:6]}"
    path.write_bytes(b"half a payl")
    if old:
        age(path, 2 * HOUR)
    return path


def referenced_blob(rx: Receiver) -> str:
    """A blob that an outbound message refers to (committed), older than the grace period."""
    key = rx.gateway.blobs.put(io.BytesIO(b"evidence")).key
    age(rx.gateway.blobs.path(key), 2 * HOUR)
    with rx.gateway.read() as session:
        session.add(Message(direction=Direction.OUTBOUND, state=MessageState.SENT, blob_key=key))
    return key


@pytest.fixture
def gw(make_receiver: ReceiverFactory, database_url: str) -> Receiver:
    receiver = make_receiver(database_url)
    receiver.seed()
    return receiver


def test_sweep_removes_only_old_unreferenced_files(gw: Receiver, sbd: bytes) -> None:
    store = gw.gateway.blobs
    with gw.build(sbd) as message:
        assert gw.send(message).status_code == 200
    [received] = gw.messages()
    assert received.blob_key is not None
    age(store.path(received.blob_key), 2 * HOUR)
    kept = referenced_blob(gw)
    old_orphan, young_orphan = orphan(store, old=True), orphan(store, old=False)
    old_temp, young_temp = temp_file(store, old=True), temp_file(store, old=False)

    assert sweep_blobs(gw.gateway, force=True) == 2
    assert not store.exists(old_orphan) and not old_temp.exists()
    assert store.exists(received.blob_key) and store.exists(kept)
    assert store.exists(young_orphan) and young_temp.exists()
    # the stored document is still served in full
    with store.open(received.blob_key) as fh:
        assert fh.read() == sbd
    assert sweep_blobs(gw.gateway, force=True) == 0


def test_a_reference_committed_during_the_sweep_is_respected(gw: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    store = gw.gateway.blobs
    key = orphan(store, old=True)  # written long ago; its message commits only now, while the sweep lists
    listing = store.iter_blobs

    def listing_then_commit() -> Iterator[tuple[str, float]]:
        yield from listing()
        with gw.gateway.read() as session:
            session.add(Message(direction=Direction.OUTBOUND, state=MessageState.QUEUED, blob_key=key))

    monkeypatch.setattr(store, "iter_blobs", listing_then_commit)
    assert sweep_blobs(gw.gateway, force=True) == 0
    assert store.exists(key)


def test_many_orphans_are_checked_in_batches(gw: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maintenance, "BATCH", 3)
    store = gw.gateway.blobs
    orphans = [orphan(store, old=True) for _ in range(7)]
    kept = [referenced_blob(gw) for _ in range(4)]
    assert sweep_blobs(gw.gateway, force=True) == 7
    assert not any(store.exists(key) for key in orphans)
    assert all(store.exists(key) for key in kept)


def test_sweep_runs_at_most_every_interval(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver(storage__orphan_sweep_minutes="30")
    store = rx.gateway.blobs
    first = orphan(store, old=True)
    assert sweep_blobs(rx.gateway) == 1 and not store.exists(first)
    second = orphan(store, old=True)
    assert sweep_blobs(rx.gateway) == 0  # within 30 minutes of the last sweep
    assert store.exists(second)


def test_grace_period_is_configurable(make_receiver: ReceiverFactory) -> None:
    rx = make_receiver(storage__orphan_grace_minutes="180")
    store = rx.gateway.blobs
    two_hours = orphan(store, old=True)
    three_and_more = orphan(store, old=False)
    age(store.path(three_and_more), 3 * HOUR + 60)
    assert sweep_blobs(rx.gateway, force=True) == 1
    assert store.exists(two_hours) and not store.exists(three_and_more)


def test_the_worker_runs_the_sweep(make_receiver: ReceiverFactory) -> None:
    assert "accesspoint.flows.maintenance:sweep_blobs" in TASKS
    rx = make_receiver()
    key = orphan(rx.gateway.blobs, old=True)
    assert run_worker(rx.gateway, once=True) == 1
    assert not rx.gateway.blobs.exists(key)


def test_listing_skips_files_that_are_not_blobs(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    key = store.put(io.BytesIO(b"a")).key
    temp = temp_file(store, old=False)
    (store.root / "README").write_text("not a blob")
    misplaced = store.root / "ff" / "ff" / key  # a valid key in the wrong directory is not this store's blob
    misplaced.parent.mkdir(parents=True)
    misplaced.write_bytes(b"b")
    assert [k for k, _ in store.iter_blobs()] == [key]
    assert [p for p, _ in store.iter_temp_files()] == [temp]
    with pytest.raises(BlobKeyError):
        store.delete_temp_file(store.path(key))  # a blob is never removed as a temp file
    with pytest.raises(BlobKeyError):
        store.delete_temp_file(store.root / "README")
    store.delete_temp_file(temp)
    assert not temp.exists() and store.exists(key)
