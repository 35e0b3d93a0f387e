"""Single flight in the read cache (chefops.readcache.cached): concurrent misses of one entry
compute it once. Against the configured cache: Redis when REDIS_URL is set, else in-process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache

from chefops import readcache

THREADS = 8
pytestmark = pytest.mark.usefixtures("cache_answers_unchecked")  # counts the computations


@pytest.fixture(autouse=True)
def read_cache(settings: Any) -> Iterator[None]:
    settings.READ_CACHE_SECONDS = 300
    cache.clear()
    yield
    cache.clear()


def lookups(result: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("chefops_read_cache_lookups_total", {"result": result})
    return value or 0.0


def together(call: Callable[[], Any]) -> list[Any]:
    """``call`` in THREADS threads released at the same moment; their results."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def run(index: int) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


class WaitersGate:
    """Counts the threads that entered the single-flight wait; lets a leader's computation
    finish only once ``expected`` of them are waiting (events, not sleeps)."""

    def __init__(self, monkeypatch: Any, expected: int) -> None:
        self.expected = expected
        self.waiting = 0
        self.condition = threading.Condition()
        original = readcache._wait_for_fill

        def counted(*args: Any) -> Any:
            with self.condition:
                self.waiting += 1
                self.condition.notify_all()
            return original(*args)

        monkeypatch.setattr(readcache, "_wait_for_fill", counted)
        # Waiters give up only after a minute: long enough for any busy machine.
        monkeypatch.setattr(readcache, "FILL_WAIT_SECONDS", 60.0)

    def hold_until_all_wait(self) -> None:
        with self.condition:
            assert self.condition.wait_for(lambda: self.waiting >= self.expected, timeout=120)


def test_concurrent_misses_compute_once_and_share_the_value(monkeypatch: Any) -> None:
    company = uuid.uuid4()
    computed: list[int] = []
    gate = WaitersGate(monkeypatch, expected=THREADS - 1)

    def compute() -> dict[str, int]:
        computed.append(1)
        gate.hold_until_all_wait()  # every other thread missed and waits for this value
        return {"total": 42}

    waited, hits = lookups("waited"), lookups("hit")
    results = together(lambda: readcache.cached(company, "GET /report", compute))
    assert results == [{"total": 42}] * THREADS
    assert len(computed) == 1
    assert lookups("waited") - waited == THREADS - 1
    assert lookups("hit") == hits
    # after an invalidation, the next wave computes once more
    readcache.bump_on_commit([readcache.tenant_scope(company)])
    gate.waiting = 0
    together(lambda: readcache.cached(company, "GET /report", compute))
    assert len(computed) == 2


def test_waiters_compute_themselves_when_the_leader_stores_nothing(monkeypatch: Any) -> None:
    gate = WaitersGate(monkeypatch, expected=THREADS - 1)
    company = uuid.uuid4()
    computed: list[int] = []
    leaders: list[int] = []

    def compute() -> None:  # e.g. an error response: never stored
        computed.append(1)
        if not leaders:
            leaders.append(1)
            gate.hold_until_all_wait()

    started = time.monotonic()
    together(
        lambda: readcache.cached(
            company, "GET /bad", compute, cacheable=lambda value: value is not None
        )
    )
    assert len(computed) == THREADS
    # Nobody sat out the 60 s wait: the lock's release sent them to compute.
    assert time.monotonic() - started < 45


def test_different_entries_do_not_wait_for_each_other(monkeypatch: Any) -> None:
    gate = WaitersGate(monkeypatch, expected=THREADS)
    company = uuid.uuid4()
    computed: list[str] = []
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def call() -> str:
        with lock:
            key = f"GET /range/{next(counter)}"

        def compute() -> str:
            computed.append(key)
            return key

        return readcache.cached(company, key, compute)

    results = together(call)
    assert sorted(results) == sorted(computed) and len(computed) == THREADS
    assert gate.waiting == 0
