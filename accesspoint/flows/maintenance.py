"""Housekeeping tasks of the worker: removing payload files that no message refers to.

Receiving writes and fsyncs the payload blob first and commits the Message afterwards (receiving.py), so a crash
(or a kill) between the two leaves a blob nobody refers to, and a crash in the middle of the write leaves a hidden
`.incoming-*` temporary file. Neither is ever read again; `sweep_blobs` removes them.

Safety: a blob is deleted only if it is older than `storage.orphan_grace_minutes` AND no Message refers to it when
checked AFTER the listing. A message committed while the sweep runs therefore either refers to a blob written
moments ago (younger than the grace period, left alone) or is already visible to the reference check. The grace
period must exceed the longest time between a blob's write and its message's commit (seconds in practice).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from itertools import islice

from sqlalchemy import select

from accesspoint.gateway import Gateway
from accesspoint.store.models import Message

log = logging.getLogger(__name__)

# Keys per reference query: well below SQLite's and PostgreSQL's bound-parameter limits.
BATCH = 500

_last_sweep: dict[str, float] = {}
_last_sweep_lock = threading.Lock()


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _due(gateway: Gateway, now: float) -> bool:
    """At most one sweep per `storage.orphan_sweep_minutes` per blob store in this process (kept in memory, so
    a restarted worker sweeps once at start)."""
    interval = gateway.config.storage.orphan_sweep_minutes * 60
    root = str(gateway.blobs.root)
    with _last_sweep_lock:
        last = _last_sweep.get(root)
        if last is not None and now - last < interval:
            return False
        _last_sweep[root] = now
        return True


def sweep_blobs(gateway: Gateway, *, force: bool = False) -> int:
    """Worker task: delete orphaned blobs and stale temporary files older than the grace period; returns how
    many files were removed. Runs at most every `orphan_sweep_minutes` unless `force`."""
    now = time.time()
    if not force and not _due(gateway, now):
        return 0
    cutoff = now - gateway.config.storage.orphan_grace_minutes * 60
    store = gateway.blobs
    removed = 0
    for path, mtime in list(store.iter_temp_files()):
        # a `put` still writing keeps refreshing its file's mtime, so only an abandoned one gets this old
        if mtime < cutoff:
            store.delete_temp_file(path)
            removed += 1
            log.warning("removed an unfinished payload file", extra={"path": str(path)})
    # list first, then ask the database: a reference committed after the listing is seen by the query below
    candidates = [key for key, mtime in store.iter_blobs() if mtime < cutoff]
    for batch in _batches(candidates, BATCH):
        with gateway.read() as session:
            referenced = set(session.scalars(select(Message.blob_key).where(Message.blob_key.in_(batch))))
            # an outbound message's stored HTTP body, kept for a byte-identical resend (sending.py)
            referenced |= set(session.scalars(select(Message.wire_blob_key).where(Message.wire_blob_key.in_(batch))))
        for key in batch:
            if key not in referenced:
                store.delete(key)
                removed += 1
                log.warning("removed a payload file no message refers to", extra={"blob_key": key})
    return removed
