"""A small thread-safe TTL cache for discovery answers, with single-flight per key.

Positive answers live `positive_ttl` seconds; "negative" answers (exceptions of the configured
types, e.g. not registered / not supported) live `negative_ttl` seconds and are re-raised on a hit.
Every other exception (unavailable, untrusted) is never cached: the next caller tries again.
While one thread computes a key, other threads asking for the same key wait for that result
instead of sending their own request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Entry:
    expires: float
    value: object = None
    error: BaseException | None = None


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None


class DiscoveryCache(Generic[T]):
    def __init__(
        self,
        positive_ttl: float = 15 * 60,
        negative_ttl: float = 2 * 60,
        *,
        negative_types: tuple[type[BaseException], ...] = (),
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self.negative_types = negative_types
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}
        self._inflight: dict[Hashable, _Flight] = {}
        self._stats = {"hits": 0, "misses": 0, "negative_hits": 0, "inflight_waits": 0, "evictions": 0}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached answer for `key`, or compute it once (concurrent callers share the computation)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires > self._clock():
                if entry.error is not None:
                    self._stats["negative_hits"] += 1
                    raise entry.error
                self._stats["hits"] += 1
                return entry.value  # type: ignore[return-value]
            if entry is not None:
                del self._entries[key]
            flight = self._inflight.get(key)
            owner = flight is None
            if flight is None:
                flight = _Flight()
                self._inflight[key] = flight
                self._stats["misses"] += 1
            else:
                self._stats["inflight_waits"] += 1
        if not owner:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]
        try:
            value = compute()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                if isinstance(exc, self.negative_types):
                    self._store(key, _Entry(self._clock() + self.negative_ttl, error=exc))
                del self._inflight[key]
            flight.done.set()
            raise
        flight.value = value
        with self._lock:
            self._store(key, _Entry(self._clock() + self.positive_ttl, value=value))
            del self._inflight[key]
        flight.done.set()
        return value

    def _store(self, key: Hashable, entry: _Entry) -> None:
        if len(self._entries) >= self.max_entries:
            now = self._clock()
            for stale in [k for k, e in self._entries.items() if e.expires <= now]:
                del self._entries[stale]
            while len(self._entries) >= self.max_entries:
                # Insertion order: the oldest entry goes first.
                del self._entries[next(iter(self._entries))]
                self._stats["evictions"] += 1
        self._entries[key] = entry

    def invalidate(self, key: Hashable) -> None:
        """Forget `key` (e.g. after delivery showed the endpoint data is outdated)."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._stats, "size": len(self._entries), "inflight": len(self._inflight)}
