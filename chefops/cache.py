"""Django's Redis cache backend, with one ``redis.Redis`` client per connection pool.

``django.core.cache.backends.redis.RedisCacheClient.get_client`` builds a new ``redis.Redis``
for every cache call; with redis-py 8 that constructor (its table of ~170 response callbacks)
cost more CPU than the round trip itself, on every request (session activity, read cache,
throttles). A ``redis.Redis`` is thread-safe and only wraps its pool, so one per pool is
enough. Keys are not checked for memcached portability. Everything else (pools, serializer,
options) is Django's own.
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

    def validate_key(self, key: str) -> None:
        """Redis takes any key: skip the base class's memcached portability warnings, a
        character-by-character scan of every key (a cached read looks up eight)."""
