"""The Django cache on Redis: django-redis, with a ``clear()`` that deletes this cache's keys only.

django-redis keeps one ``redis.Redis`` per backend instance (Django's own backend built one,
with its table of ~170 response callbacks, on every call), takes any key without Django's
memcached portability scan, uses the hiredis reply parser when it is installed, and does
``get_many`` in one ``MGET``, ``set_many`` in one pipeline, ``add`` as ``SET NX`` and ``incr``
as one atomic script that refuses a missing key. Its ``clear()`` is ``FLUSHDB``, which would
delete whatever else shares the database — another deployment's cache, another test run's
keys, or the Celery broker's queues where an operator put both in one database (README
"Redis"): :class:`PrefixClearClient` deletes the keys under ``KEY_PREFIX`` instead.

Its ``decode`` also skips django-redis's ``int()`` attempt on a value that is a pickle: a cached
principal or read costs an ``MGET`` of 5 to 9 values, and the exception each failed attempt
raised cost more than unpickling the value (issue #18).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django_redis.client import DefaultClient
from django_redis.exceptions import CompressorError

# What a pickle of protocol 2 or later (django-redis's serializer) starts with: the PROTO opcode.
# ``int()`` accepts ASCII digits, signs, underscores and whitespace only, so it can never parse
# a value starting with this byte.
_PICKLE_PROTO = b"\x80"

CLEAR_BATCH = 1000


class PrefixClearClient(DefaultClient):
    """django-redis's client (``OPTIONS["CLIENT_CLASS"]``), ``clear()`` limited to the prefix."""

    def clear(self, client: Any = None) -> None:
        backend: Any = self._backend
        delete_prefix(client or self.get_client(write=True), backend.key_prefix)

    def decode(self, value: bytes | int | str) -> Any:
        """``DefaultClient.decode``, without trying ``int()`` on a pickle (it always fails)."""
        if isinstance(value, bytes) and value[:1] == _PICKLE_PROTO:
            # What DefaultClient.decode does once int() has failed.
            with suppress(CompressorError):
                value = self._compressor.decompress(value)
            return self._serializer.loads(value)
        return super().decode(value)


def delete_prefix(client: Any, prefix: str) -> int:
    """Delete every key under ``prefix`` (``<prefix>:*``) through the redis-py ``client``,
    SCAN + UNLINK in batches, and nothing else; how many were deleted."""
    if not prefix:
        raise ValueError("refusing to clear a Redis cache without KEY_PREFIX (FLUSHDB)")
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=_glob_escape(prefix) + ":*", count=CLEAR_BATCH):
        batch.append(key)
        if len(batch) >= CLEAR_BATCH:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\^" else char for char in text)
