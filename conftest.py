"""Shared test configuration: services checked before anything runs, capability markers,
and this run's private state (see TEST_RUN_ID in chefops/settings.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.conf import settings

from chefops.testing.services import unreachable_services


def pytest_configure(config: pytest.Config) -> None:
    """A DATABASE_URL or REDIS_URL that names a dead server stops the run at once, with one
    message naming it, instead of an error in every test that touches it."""
    problems = unreachable_services()
    if problems:
        _remove_run_state()
        raise pytest.UsageError("\n".join(["cannot run the tests:", *problems]))


def pytest_unconfigure(config: pytest.Config) -> None:
    _remove_run_state()


def _remove_run_state() -> None:
    """This run's directory of job stamps, queues, archives and backups (never ``.run/``)."""
    if settings.TEST_STATE_DIR is not None:
        shutil.rmtree(settings.TEST_STATE_DIR, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...); running on SQLite"
    )
    skip_redis = pytest.mark.skip(reason="needs a real Redis broker (set REDIS_URL=redis://...)")
    for item in items:
        if "postgres" in item.keywords and not settings.IS_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Every test starts with an empty cache: this run's keys only (KEY_PREFIX), never the
    Redis database another run shares."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _cache_bumps_at_test_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caches are on in tests, and a test case's transaction never commits: the version
    tokens a block's writes bump (``chefops/cachewrites.py``, after commit) are sent when the
    outermost block that would commit outside the test exits without an error. Writes made
    directly in the test case's transaction are sent at once by ``bump_on_commit``."""
    from django.db import transaction

    from chefops import cachewrites

    original = transaction.Atomic.__exit__

    def exit_and_send(self: Any, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
        result = original(self, exc_type, exc_value, traceback)
        conn = transaction.get_connection(self.using)
        if (
            exc_type is None
            and not getattr(self, "_from_testcase", False)
            and conn.atomic_blocks
            and all(getattr(block, "_from_testcase", False) for block in conn.atomic_blocks)
        ):
            cachewrites.send_pending(conn)
        return result

    monkeypatch.setattr(transaction.Atomic, "__exit__", exit_and_send)


class StaleAnswers(list[str]):
    """The stale answers found in a test; ``checking`` off for tests of the caches' own races
    (``cache_answers_unchecked``)."""

    checking = True


@pytest.fixture(autouse=True)
def stale_cache_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[StaleAnswers]:
    """Every read and principal a test gets from the caches is compared with a fresh
    computation: a write that bypassed the data layer's invalidation (chefops/cachewrites.py)
    fails the test that made it, naming the stale answer (the request itself is served the
    fresh one). Skipped while a test counts queries (the check's own would count)."""
    from django.db import connection

    from chefops import readcache
    from companies import principals

    cached, principal = readcache.cached, principals.principal
    stale = StaleAnswers()

    def counting() -> bool:
        return not stale.checking or bool(connection.force_debug_cursor)

    def checked_read(company_id: Any, key: str, compute: Any, **kwargs: Any) -> Any:
        value = cached(company_id, key, compute, **kwargs)
        if readcache.enabled() and not counting():
            fresh = compute()
            if kwargs.get("cacheable", lambda found: True)(fresh) and value != fresh:
                stale.append(f"stale cached read {key}:\n{value!r}\n!= {fresh!r}")
                return fresh
        return value

    def checked_principal(user_id: Any, company_claim: Any, **kwargs: Any) -> Any:
        user = principal(user_id, company_claim, **kwargs)
        if principals.enabled() and not counting():
            fresh = principals.load_principal(user_id, kwargs.get("session_id"))
            mine = principals._principal.values(user) if user is not None else None
            theirs = principals._principal.values(fresh) if fresh is not None else None
            if mine != theirs:
                stale.append(f"stale cached principal {user_id}: {mine!r} != {theirs!r}")
                return fresh
        return user

    monkeypatch.setattr(readcache, "cached", checked_read)
    monkeypatch.setattr(principals, "principal", checked_principal)
    yield stale
    assert not stale, "\n".join(stale)


@pytest.fixture
def cache_answers_unchecked(stale_cache_answers: StaleAnswers) -> None:
    """No fresh check (``stale_cache_answers``): for tests of the caches' own interleavings
    (single flight, a session ended mid-request), which serve a stale answer on purpose or
    count computations."""
    stale_cache_answers.checking = False


@pytest.fixture
def frozen_clock() -> Iterator[datetime]:
    """The clock stopped at the test's start: rules keyed on the clock minute or second
    (session activity, throttles) cannot change their answer half-way through a test that a
    busy machine slows down."""
    import time_machine
    from django.utils import timezone

    now = timezone.now()
    with time_machine.travel(now, tick=False):
        yield now


@pytest.fixture
def cast(db: None) -> Any:
    """Two caterers and two clients, each with an ADMIN, a MANAGER and an EMPLOYEE user."""
    from chefops.testing.cast import make_cast

    return make_cast()
