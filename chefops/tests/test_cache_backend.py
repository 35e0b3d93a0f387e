"""The Redis cache backend keeps one client per pool (chefops/cache.py), against real Redis."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache, caches

from chefops.cache import ChefOpsRedisCache


@pytest.mark.redis
def test_one_client_per_pool_and_the_cache_still_works() -> None:
    default = caches["default"]
    assert isinstance(default, ChefOpsRedisCache)
    backend = default._cache
    assert backend.get_client() is backend.get_client(write=True)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                key = f"test:pool:{n}:{i}"
                assert cache.add(key, i, timeout=30)
                assert cache.get(key) == i
                cache.delete(key)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.redis
def test_keys_with_spaces_and_long_keys_work_without_memcached_warnings() -> None:
    import warnings

    long_key = "rc:e:" + "x" * 300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django's memcached check would warn on both keys
        cache.set("key with spaces", 1, timeout=30)
        cache.set(long_key, 2, timeout=30)
        assert cache.get_many(["key with spaces", long_key]) == {
            "key with spaces": 1,
            long_key: 2,
        }
    cache.delete_many(["key with spaces", long_key])
