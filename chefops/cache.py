"""Django's Redis cache backend, with one ``redis.Redis`` client per connection pool.

``django.core.cache.backends.redis.RedisCacheClient.get_client`` builds a new ``redis.Redis``
for every cache call; with redis-py 8 that constructor (its table of ~170 response callbacks)
cost more CPU than the round trip itself, on every request (session activity, read cache,
throttles). A ``redis.Redis`` is thread-safe and only wraps its pool, so one per pool is
enough. Keys are not checked for memcached portability. Everything else (pools, serializer,
options) is Django's own, but ``clear()``: it removes this cache's keys only (its
``KEY_PREFIX``), never the whole Redis database that the Celery broker, another deployment or
another test run may share.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class PooledRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django_client: Any = self  # the base class's private helpers are not in the stubs
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = django_client._get_connection_pool(write)
            client = self._clients.setdefault(index, django_client._client(connection_pool=pool))
        return client


class ChefOpsRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = PooledRedisCacheClient

    def clear(self) -> None:
        """Delete every key of this cache (``KEY_PREFIX``) and nothing else: SCAN + UNLINK in
        batches instead of FLUSHDB."""
        if not self.key_prefix:
            raise ValueError("refusing to clear a Redis cache without KEY_PREFIX (FLUSHDB)")
        pattern = _glob_escape(self.key_prefix) + ":*"
        client = self._cache.get_client(write=True)
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)

    def validate_key(self, key: str) -> None:
        """Redis takes any key: skip the base class's memcached portability warnings, a
        character-by-character scan of every key (a cached read looks up eight)."""


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\^" else char for char in text)
