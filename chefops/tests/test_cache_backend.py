"""The Django cache on Redis (django-redis with chefops/cache.py's client), against real Redis:
what the callers rely on (readcache, principals, authentication, throttling, jobs), one round
trip per call, the hiredis parser, and a ``clear()`` that deletes this cache's keys only."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches
from django_redis.cache import RedisCache
from django_redis.client import DefaultClient
from redis._parsers import _HiredisParser
from redis.connection import AbstractConnection

from chefops.cache import PrefixClearClient, delete_prefix

pytestmark = pytest.mark.redis


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    """A plain client of the cache's database, to see what the backend really wrote."""
    client = redis.Redis.from_url(settings.CACHE_URL)
    yield client
    client.close()


class RoundTrips:
    """Counts what the process sends to Redis: one ``send_packed_command`` per command, or per
    pipeline (all its commands in one write, then all the replies)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real: Callable[..., Any] = AbstractConnection.send_packed_command

        def counting(connection: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(connection, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)

    def __call__(self, action: Callable[[], Any]) -> tuple[Any, int]:
        before = self.count
        result = action()
        return result, self.count - before


def test_the_backend_is_django_redis_with_one_client_and_the_hiredis_parser() -> None:
    default = caches["default"]
    assert isinstance(default, RedisCache)
    assert isinstance(default.client, PrefixClearClient)
    client = default.client.get_client()
    assert client is default.client.get_client(write=True)  # one redis.Redis, not one per call
    cache.set("test:parser", 1, timeout=30)  # a connection now exists in the pool
    connection = client.connection_pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser)
    finally:
        client.connection_pool.release(connection)


def test_each_call_the_code_makes_is_one_round_trip(
    monkeypatch: pytest.MonkeyPatch, raw: redis.Redis
) -> None:
    cache.get("test:warm-up")  # the connection's handshake is not part of any call below
    trips = RoundTrips(monkeypatch)
    assert trips(lambda: cache.set_many({"a": 1, "b": "two", "c": (3,)}, timeout=None)) == (
        None,
        1,
    )
    # get_many answers only the keys present, in one MGET (readcache, principals)
    assert trips(lambda: cache.get_many(["a", "missing", "b", "c"])) == (
        {"a": 1, "b": "two", "c": (3,)},
        1,
    )
    assert trips(lambda: cache.add("d", 0, timeout=30)) == (True, 1)
    assert trips(lambda: cache.add("d", 5, timeout=30)) == (False, 1)
    assert trips(lambda: cache.incr("d")) == (1, 1)  # throttling: add then incr
    assert trips(lambda: cache.get("d")) == (1, 1)
    assert trips(lambda: cache.delete("d")) == (True, 1)
    assert raw.ttl(cache.make_key("a")) == -1  # timeout=None: no expiry (version tokens)
    cache.delete_many(["a", "b", "c"])


def test_incr_of_a_missing_key_raises_value_error_and_creates_nothing(raw: redis.Redis) -> None:
    """companies/throttling.py: a counter evicted between ``add`` and ``incr`` is a ValueError
    (then set to 1), never a counter silently created without an expiry."""
    with pytest.raises(ValueError):
        cache.incr("test:never-set")
    assert raw.exists(cache.make_key("test:never-set")) == 0


def test_add_is_atomic_under_concurrent_callers() -> None:
    """readcache's version tokens and fill locks: of many concurrent ``add``, exactly one wins."""
    key = f"test:add:{uuid.uuid4().hex}"
    barrier = threading.Barrier(8)
    wins: list[bool] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            wins.append(caches["default"].add(key, n, timeout=30))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(wins) == [False] * 7 + [True]


def test_threads_share_the_cache_safely() -> None:
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


def test_clear_deletes_this_prefix_only_and_never_flushes(
    monkeypatch: pytest.MonkeyPatch, raw: redis.Redis
) -> None:
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    others = {
        f"{prefix}x:1:similar-prefix": b"theirs",  # starts like ours, is not ours
        "chefops:1:production-entry": b"theirs",
        "a*[glob]:1:k": b"theirs",
    }
    flushed: list[str] = []
    for name in ("flushdb", "flushall"):
        monkeypatch.setattr(redis.Redis, name, lambda *a, _n=name, **k: flushed.append(_n))
    try:
        raw.mset(others)
        cache.set_many({f"k{i}": i for i in range(2500)}, timeout=60)  # several SCAN batches
        cache.clear()
        assert flushed == []
        assert raw.keys(f"{prefix}:*") == []
        assert raw.mget(list(others)) == list(others.values())
    finally:
        raw.delete(*others)


def test_delete_prefix_takes_glob_characters_literally(raw: redis.Redis) -> None:
    prefix = f"chefops-test-{settings.TEST_RUN_ID}-a*[b]?\\c"
    neighbour = f"chefops-test-{settings.TEST_RUN_ID}-aXbYc:1:k"  # what an unescaped glob takes
    try:
        raw.mset({f"{prefix}:1:k": b"1", f"{prefix}:1:j": b"2", neighbour: b"keep"})
        assert delete_prefix(raw, prefix) == 2
        assert raw.get(neighbour) == b"keep"
        with pytest.raises(ValueError, match="KEY_PREFIX"):
            delete_prefix(raw, "")
    finally:
        raw.delete(f"{prefix}:1:k", f"{prefix}:1:j", neighbour)


ROUND_TRIP_VALUES: list[Any] = [
    0,
    -7,
    2**63 - 1,
    True,
    False,
    None,
    "12",
    b"12",
    b"\x80not a pickle",
    "\x80 text",
    1.5,
    ("tokens", [1, 2, 3]),
    {"nested": {"k": [None, "v"]}},
    uuid.UUID(int=5),
]


@pytest.mark.parametrize("value", ROUND_TRIP_VALUES, ids=repr)
def test_values_come_back_as_stored_through_set_get_and_get_many(value: Any) -> None:
    """PrefixClearClient.decode skips int() on pickles: every kind of value still comes back
    equal and of its own type (True is not 1, "12" is not 12), alone and in an MGET."""
    key = f"decode-{uuid.uuid4().hex}"
    cache.set(key, value, timeout=60)
    try:
        for found in (cache.get(key, "missing"), cache.get_many([key, "absent"])[key]):
            assert found == value
            assert type(found) is type(value)
    finally:
        cache.delete(key)


def test_decode_answers_what_django_redis_answers_for_every_encoded_value() -> None:
    client: Any = cache.client  # type: ignore[attr-defined]
    assert isinstance(client, PrefixClearClient)
    for value in ROUND_TRIP_VALUES:
        encoded = client.encode(value)
        mine, theirs = client.decode(encoded), DefaultClient.decode(client, encoded)
        assert mine == theirs == value and type(mine) is type(theirs)
    # What incr writes and a foreign writer may leave: plain digits, decoded as an int.
    assert client.decode(b"42") == DefaultClient.decode(client, b"42") == 42
