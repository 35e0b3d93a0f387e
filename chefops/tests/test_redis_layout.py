"""One Redis layout (chefops/redis_layout.py, README "Redis"): the Celery broker and the Django
cache in separate databases derived from REDIS_URL, a ``cache.clear()`` that never touches the
broker, and the eviction-policy check — a pure function of the policy, plus real calls that
read the live server."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core import checks
from django.core.cache import cache

from chefops import redis_layout
from chefops.celery import app, warn_about_redis_eviction
from chefops.checks import redis_eviction_policy
from chefops.redis_layout import eviction_problems, layout
from chefops.tasks import ping

# --- deriving the two URLs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("redis_url", "cache_url", "broker_url"),
    [
        # the broker keeps the database REDIS_URL names; the cache takes the next one
        ("redis://h:6379", "redis://h:6379/1", "redis://h:6379"),
        ("redis://h:6379/0", "redis://h:6379/1", "redis://h:6379/0"),
        ("redis://h/7", "redis://h/8", "redis://h/7"),
        # 15, the last of Redis's default 16: the previous one
        ("redis://:p%40ss@h:6380/15", "redis://:p%40ss@h:6380/14", "redis://:p%40ss@h:6380/15"),
        # ?db= wins over the path (as in redis-py); other options are kept
        ("rediss://u:pw@h/3?db=4&ssl_cert_reqs=none", None, None),
        ("unix:///run/redis.sock", "unix:///run/redis.sock?db=1", "unix:///run/redis.sock"),
        ("unix:///run/redis.sock?db=2&password=x", "unix:///run/redis.sock?password=x&db=3", None),
    ],
)
def test_redis_url_alone_puts_broker_and_cache_in_two_databases(
    redis_url: str, cache_url: str | None, broker_url: str | None
) -> None:
    cache_derived, broker_derived = layout(redis_url)
    assert broker_derived == (broker_url or redis_url)
    if cache_url:
        assert cache_derived == cache_url
    assert redis_layout.database(cache_derived) != redis_layout.database(broker_derived)
    assert redis_layout.server(cache_derived) == redis_layout.server(broker_derived)
    import redis.connection

    cache_kwargs = redis.connection.parse_url(cache_derived)
    broker_kwargs = redis.connection.parse_url(broker_derived)
    assert cache_kwargs.pop("db") != broker_kwargs.pop("db", 0)
    assert cache_kwargs == broker_kwargs  # same server, credentials and options


def test_explicit_urls_win_and_may_share_one_database() -> None:
    """A single-database Redis (Redis Cluster, some managed offerings): CACHE_URL set to the
    broker's URL puts both in database 0."""
    assert layout("redis://h/0", cache_url="redis://h/0") == ("redis://h/0", "redis://h/0")
    assert layout("redis://h/0", broker_url="redis://b/2") == ("redis://h/1", "redis://b/2")
    assert layout("", cache_url="redis://c/0", broker_url="redis://b/0") == (
        "redis://c/0",
        "redis://b/0",
    )
    assert layout("") == ("", "")
    assert layout("", cache_url="redis://c/4") == ("redis://c/4", "")


@pytest.mark.parametrize(
    "variables",
    [
        {"redis_url": "memcached://h"},
        {"redis_url": "redis://h", "cache_url": "locmem://"},
        {"redis_url": "redis://h", "broker_url": "amqp://h//"},
    ],
)
def test_a_url_that_is_not_redis_is_refused(variables: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="must be a redis://"):
        layout(**{"redis_url": "", **variables})


# --- the eviction policy, as a function of the policy string -------------------------------

GIB = 1 << 30
BOTH = frozenset({"broker", "cache"})


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_an_allkeys_policy_warns_for_the_broker_and_for_the_cache(policy: str) -> None:
    (broker,) = eviction_problems(policy, GIB, {"broker"})
    assert "queued tasks" in broker
    (cache_only,) = eviction_problems(policy, GIB, {"cache"})
    assert "job stamps" in cache_only
    assert len(eviction_problems(policy, GIB, BOTH)) == 2


@pytest.mark.parametrize(
    "policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"]
)
def test_a_volatile_policy_keeps_queues_tokens_and_stamps(policy: str) -> None:
    for holds in ({"broker"}, {"cache"}, BOTH):
        assert eviction_problems(policy, GIB, holds) == []


def test_noeviction_suits_a_broker_alone_not_a_cache() -> None:
    assert eviction_problems("noeviction", GIB, {"broker"}) == []
    (cache_only,) = eviction_problems("noeviction", GIB, {"cache"})
    assert "invalidations" in cache_only and "broker" not in cache_only
    (shared,) = eviction_problems("noeviction", GIB, BOTH)
    assert "broker refuse new tasks" in shared


def test_without_maxmemory_redis_never_evicts() -> None:
    assert eviction_problems("allkeys-lru", 0, BOTH) == []


def test_an_unknown_policy_is_reported() -> None:
    assert eviction_problems("sometimes-lru", GIB, {"broker"}) == [
        "unknown maxmemory-policy 'sometimes-lru'"
    ]


# --- the real Redis ------------------------------------------------------------------------


@pytest.fixture
def broker_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_BROKER_URL)
    yield client
    client.close()


@pytest.fixture
def cache_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.CACHE_URL)
    yield client
    client.close()


@pytest.fixture
def queued_task(broker_db: redis.Redis) -> Iterator[str]:
    """A task published (not run: no worker consumes this queue) to a queue of this test's
    own; yields the queue's Redis key. The queue's keys are removed afterwards."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    queue = f"layout-probe-{uuid.uuid4().hex[:8]}"
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        ping.apply_async(queue=queue)
        yield f"{prefix}{queue}"
    finally:
        app.conf.task_always_eager = previous
        stale = list(broker_db.scan_iter(match=f"{prefix}*{queue}*"))
        if stale:
            broker_db.delete(*stale)


@pytest.mark.redis
def test_with_redis_url_alone_the_cache_and_the_broker_use_different_databases(
    monkeypatch: pytest.MonkeyPatch,
    broker_db: redis.Redis,
    cache_db: redis.Redis,
    queued_task: str,
) -> None:
    if settings.REDIS_URL and not any(
        name in os.environ for name in ("CACHE_URL", "CELERY_BROKER_URL")
    ):
        assert settings.REDIS_BROKER_URL == settings.REDIS_URL
        assert settings.CELERY_BROKER_URL == settings.CELERY_RESULT_BACKEND == settings.REDIS_URL
        assert settings.CACHES["default"]["LOCATION"] == [settings.CACHE_URL]
    assert redis_layout.database(settings.CACHE_URL) != redis_layout.database(
        settings.REDIS_BROKER_URL
    )
    cache.set("layout:probe", "here", timeout=60)
    key = cache.make_key("layout:probe")
    assert cache_db.get(key) is not None and broker_db.exists(key) == 0
    assert broker_db.llen(queued_task) == 1 and cache_db.exists(queued_task) == 0


@pytest.mark.redis
def test_cache_clear_never_touches_the_queued_tasks(
    broker_db: redis.Redis, queued_task: str
) -> None:
    message = broker_db.lindex(queued_task, 0)
    assert message is not None and b"chefops.ping" in message
    cache.set("layout:probe", 1, timeout=60)
    cache.clear()
    assert cache.get("layout:probe") is None
    assert broker_db.lrange(queued_task, 0, -1) == [message]  # still queued, untouched


@pytest.mark.redis
def test_cache_clear_spares_the_broker_even_in_one_shared_database(
    broker_db: redis.Redis, queued_task: str
) -> None:
    """The single-database layout: the cache in the broker's own database."""
    from django_redis.cache import RedisCache

    shared: Any = RedisCache([settings.REDIS_BROKER_URL], settings.CACHES["default"])
    try:
        shared.set("layout:shared", 1, timeout=60)
        assert broker_db.exists(shared.make_key("layout:shared")) == 1
        shared.clear()
        assert broker_db.exists(shared.make_key("layout:shared")) == 0
        assert broker_db.llen(queued_task) == 1
    finally:
        shared.close()


@pytest.mark.redis
def test_the_check_reads_the_live_policy_and_judges_it() -> None:
    live = redis.Redis.from_url(settings.REDIS_BROKER_URL)
    try:
        config = live.config_get("maxmemory*")
    finally:
        live.close()
    policy, maxmemory = redis_layout.read_eviction_settings(settings.CACHE_URL)
    assert (policy, str(maxmemory)) == (config["maxmemory-policy"], config["maxmemory"])
    shared = redis_layout.server(settings.CACHE_URL) == redis_layout.server(
        settings.REDIS_BROKER_URL
    )
    expected = eviction_problems(policy, maxmemory, BOTH if shared else {"cache"})
    messages = redis_eviction_policy()
    assert [m.msg.split(": ", 1)[1].rsplit("; ", 1)[0] for m in messages] == expected
    assert all(m.level == checks.WARNING and m.id == "chefops.W101" for m in messages)
    assert redis_eviction_policy in checks.registry.registry.get_checks()


@pytest.mark.redis
def test_a_server_that_refuses_config_get_is_said_and_skipped(settings: Any) -> None:
    """Managed Redis often forbids CONFIG: an ACL user without it stands in for one."""
    admin = redis.Redis.from_url(settings.REDIS_BROKER_URL)
    user, password = f"chefops-test-{settings.TEST_RUN_ID}-noconfig", uuid.uuid4().hex
    admin.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-config"],
    )
    try:
        url = redis_layout.with_database(
            settings.REDIS_BROKER_URL.replace("redis://", f"redis://{user}:{password}@", 1), 0
        )
        settings.REDIS_BROKER_URL = url
        settings.CACHE_URL = redis_layout.with_database(url, 1)
        messages = redis_eviction_policy()
    finally:
        admin.acl_deluser(user)
        admin.close()
    assert len(messages) == 1
    (info,) = messages
    assert info.level == checks.INFO and info.id == "chefops.I101"
    assert "cannot read maxmemory-policy" in info.msg and "skipped" in info.msg
    assert password not in info.msg and user not in info.msg


@pytest.mark.redis
def test_a_database_the_server_refuses_is_named_with_the_fix(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """What a single-database Redis answers to the derived cache database (here: a database
    beyond the server's `databases`), at `manage.py check` and in the worker's log."""
    settings.CACHE_URL = redis_layout.with_database(settings.REDIS_BROKER_URL, 999)
    (warning,) = [m for m in redis_eviction_policy() if m.id == "chefops.W102"]
    assert warning.level == checks.WARNING
    assert "refuses database 999" in warning.msg
    assert "set CACHE_URL to the broker's URL" in warning.msg
    with caplog.at_level(logging.INFO, logger="chefops.redis"):
        warn_about_redis_eviction()
    assert any("chefops.W102" in r.getMessage() for r in caplog.records)


def test_without_redis_there_is_nothing_to_check(settings: Any) -> None:
    settings.CACHE_URL = settings.REDIS_BROKER_URL = ""
    assert redis_eviction_policy() == []
