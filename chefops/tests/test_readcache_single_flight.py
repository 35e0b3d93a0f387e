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


def test_concurrent_misses_compute_once_and_share_the_value() -> None:
    company = uuid.uuid4()
    computed: list[int] = []

    def compute() -> dict[str, int]:
        computed.append(1)
        time.sleep(0.05)  # slow enough that every thread misses before it is stored
        return {"total": 42}

    waited, hits = lookups("waited"), lookups("hit")
    results = together(lambda: readcache.cached(company, "GET /report", compute))
    assert results == [{"total": 42}] * THREADS
    assert len(computed) == 1
    # the others waited for the leader's value (or, arriving late, found it stored)
    waiting = lookups("waited") - waited
    assert waiting >= 1 and waiting + lookups("hit") - hits == THREADS - 1
    # after an invalidation, the next wave computes once more
    readcache._bump([readcache._tenant(company)])
    together(lambda: readcache.cached(company, "GET /report", compute))
    assert len(computed) == 2


def test_waiters_compute_themselves_when_the_leader_stores_nothing(monkeypatch: Any) -> None:
    monkeypatch.setattr(readcache, "FILL_WAIT_SECONDS", 20.0)  # only the lock's release helps
    company = uuid.uuid4()
    computed: list[int] = []

    def compute() -> None:  # e.g. an error response: never stored
        computed.append(1)
        time.sleep(0.05)

    started = time.monotonic()
    together(
        lambda: readcache.cached(
            company, "GET /bad", compute, cacheable=lambda value: value is not None
        )
    )
    assert len(computed) == THREADS
    assert time.monotonic() - started < 5  # nobody sat out the 20 s wait


def test_different_entries_do_not_wait_for_each_other() -> None:
    company = uuid.uuid4()
    computed: list[str] = []
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def call() -> str:
        with lock:
            key = f"GET /range/{next(counter)}"

        def compute() -> str:
            computed.append(key)
            time.sleep(0.02)
            return key

        return readcache.cached(company, key, compute)

    results = together(call)
    assert sorted(results) == sorted(computed) and len(computed) == THREADS
