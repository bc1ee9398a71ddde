"""DiscoveryCache: TTLs, negative answers, errors never cached, single flight, statistics."""

from __future__ import annotations

import threading

import pytest

from smp.cache import DiscoveryCache
from smp.errors import DiscoveryUnavailable, DiscoveryUntrusted, NotSupported, ParticipantNotRegistered


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock) -> DiscoveryCache[str]:
    return DiscoveryCache(60, 10, negative_types=(ParticipantNotRegistered, NotSupported), clock=clock)


def test_positive_answers_live_for_their_ttl() -> None:
    clock = Clock()
    cache = make(clock)
    calls: list[int] = []

    def fetch() -> str:
        calls.append(1)
        return f"answer-{len(calls)}"

    assert cache.get("k", fetch) == "answer-1"
    clock.now += 59
    assert cache.get("k", fetch) == "answer-1"
    clock.now += 2
    assert cache.get("k", fetch) == "answer-2"
    assert cache.stats() == {"hits": 1, "misses": 2, "negative_hits": 0, "inflight_waits": 0, "evictions": 0,
                             "size": 1, "inflight": 0}


def test_negative_answers_live_shorter_and_are_re_raised() -> None:
    clock = Clock()
    cache = make(clock)
    calls: list[int] = []

    def fetch() -> str:
        calls.append(1)
        raise ParticipantNotRegistered("0007:5567321707 is not registered in Peppol")

    for _ in range(3):
        with pytest.raises(ParticipantNotRegistered, match="not registered"):
            cache.get("k", fetch)
    assert len(calls) == 1
    assert cache.stats()["negative_hits"] == 2
    clock.now += 11
    with pytest.raises(ParticipantNotRegistered):
        cache.get("k", fetch)
    assert len(calls) == 2


@pytest.mark.parametrize("error", [DiscoveryUnavailable("dns down"), DiscoveryUntrusted("bad signature")])
def test_other_errors_are_never_cached(error: Exception) -> None:
    cache = make(Clock())
    calls: list[int] = []

    def fetch() -> str:
        calls.append(1)
        raise error

    for _ in range(2):
        with pytest.raises(type(error)):
            cache.get("k", fetch)
    assert len(calls) == 2
    assert cache.stats()["size"] == 0


def test_concurrent_callers_share_one_fetch() -> None:
    cache = make(Clock())
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "shared"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(5)]
    threads[0].start()
    started.wait(5)
    for t in threads[1:]:
        t.start()
    while cache.stats()["inflight_waits"] < 4:
        threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join(5)
    assert results == ["shared"] * 5
    assert len(calls) == 1
    stats = cache.stats()
    assert stats["misses"] == 1 and stats["inflight_waits"] == 4 and stats["inflight"] == 0


def test_concurrent_callers_share_a_failure_too() -> None:
    cache = make(Clock())
    started = threading.Event()
    release = threading.Event()

    def failing() -> str:
        started.set()
        release.wait(5)
        raise DiscoveryUnavailable("SMP down")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            cache.get("k", failing)
        except DiscoveryUnavailable as exc:
            errors.append(exc)

    first = threading.Thread(target=call)
    first.start()
    started.wait(5)
    second = threading.Thread(target=call)
    second.start()
    while cache.stats()["inflight_waits"] < 1:
        threading.Event().wait(0.01)
    release.set()
    first.join(5)
    second.join(5)
    assert len(errors) == 2 and errors[0] is errors[1]


def test_invalidate_clear_and_bounded_size() -> None:
    cache = DiscoveryCache(60, 10, max_entries=3, clock=Clock())
    for key in "abcd":
        cache.get(key, lambda key=key: key.upper())
    stats = cache.stats()
    assert stats["size"] == 3 and stats["evictions"] == 1
    assert cache.get("a", lambda: "fresh") == "fresh"  # "a" was the oldest and went first
    cache.invalidate("d")
    assert cache.get("d", lambda: "again") == "again"
    cache.clear()
    assert cache.stats()["size"] == 0
