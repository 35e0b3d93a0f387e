"""The connection budget (README "Scaling", chefops/dbbudget.py): when the pool is on by
default, its size, the system check, and a real gunicorn whose pooled workers stay within
workers x DB_POOL_MAX server connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

from chefops.checks import connection_budget, database_connection_budget
from chefops.testing.gunicorn import http_get, running_gunicorn, server_env
from chefops.testing.settings_probe import django_setup

ROOT = Path(__file__).resolve().parents[2]


def _budget(settings: Any, **values: Any) -> list[Any]:
    settings.IS_POSTGRES = True
    settings.DB_POOL = True
    for name, value in values.items():
        setattr(settings, name, value)
    return database_connection_budget()


def test_the_defaults_fit_one_instances_share(settings: Any) -> None:
    """Persistent connections (the default, no pool): one per request thread, Celery process
    and beat."""
    found = _budget(
        settings,
        DB_POOL=False,
        DB_WEB_WORKERS=3,
        DB_WEB_THREADS=4,
        DB_CELERY_PROCESSES=2,
        DB_CONNECTIONS_PER_INSTANCE=16,
    )
    assert found == []
    assert connection_budget() == (
        15,
        "3 web workers x 4 + 2 Celery processes x 1 + 1 beat x 1 = 15",
    )


def test_a_pooled_beat_and_celery_process_count_their_pools_min_plus_one(settings: Any) -> None:
    """Measured: beat holds 2 connections with a pool of min 1 (its first checkout grows the
    pool while it opens its min_size connection; chefops/dbbudget.py)."""
    found = _budget(
        settings,
        DB_WEB_WORKERS=3,
        DB_POOL_MAX=3,
        DB_POOL_MIN=1,
        DB_CELERY_PROCESSES=2,
        DB_CONNECTIONS_PER_INSTANCE=16,
    )
    assert found == []
    assert connection_budget() == (
        15,
        "3 web workers x 3 + 2 Celery processes x 2 + 1 beat x 2 = 15",
    )
    # A pool of 4 per web worker no longer fits 16 once beat's 2 are counted.
    settings.DB_POOL_MAX = 4
    assert connection_budget()[0] == 18
    assert [m.id for m in database_connection_budget()] == ["chefops.W010"]


def test_more_than_the_budget_is_a_warning(settings: Any) -> None:
    found = _budget(
        settings,
        DB_WEB_WORKERS=4,
        DB_POOL_MAX=4,
        DB_POOL_MIN=2,
        DB_CELERY_PROCESSES=2,
        DB_CONNECTIONS_PER_INSTANCE=16,
    )
    assert [m.id for m in found] == ["chefops.W010"]
    assert "4 web workers x 4 + 2 Celery processes x 3 + 1 beat x 3 = 25" in found[0].msg
    assert "DB_CONNECTIONS_PER_INSTANCE=16" in found[0].msg


def test_without_a_pool_every_request_thread_may_keep_a_connection(settings: Any) -> None:
    found = _budget(
        settings,
        DB_POOL=False,
        DB_POOL_MAX=1,  # ignored without a pool
        DB_WEB_WORKERS=3,
        DB_WEB_THREADS=8,
        DB_CELERY_PROCESSES=2,
        DB_CONNECTIONS_PER_INSTANCE=16,
    )
    assert connection_budget() == (
        27,
        "3 web workers x 8 + 2 Celery processes x 1 + 1 beat x 1 = 27",
    )
    assert [m.id for m in found] == ["chefops.W010"]


def test_sqlite_has_no_budget(settings: Any) -> None:
    settings.IS_POSTGRES = False
    settings.DB_CONNECTIONS_PER_INSTANCE = 1
    assert database_connection_budget() == []


_POSTGRES_URL = "postgres://probe@127.0.0.1:1/probe"  # never connected to
_DATABASE = (
    "import json; from django.conf import settings as s; d = s.DATABASES['default']; "
    "print(json.dumps([s.DB_POOL, d['OPTIONS'].get('pool'), d['CONN_MAX_AGE'], "
    "d['CONN_HEALTH_CHECKS']]))"
)


def _database(**env: str) -> list[Any]:
    """[DB_POOL, the pool's options, CONN_MAX_AGE, CONN_HEALTH_CHECKS] as settings make them."""
    done = django_setup(
        {"DJANGO_ENV": "development", "DATABASE_URL": _POSTGRES_URL, **env},
        _DATABASE,
        without=_BUDGET_VARIABLES,
    )
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# Inherited values of these would change the defaults under test.
_BUDGET_VARIABLES = {
    "DB_POOL",
    "DB_POOL_MIN",
    "DB_POOL_MAX",
    "DB_CONNECTIONS_PER_INSTANCE",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "CELERY_WORKER_CONCURRENCY",
    "CONN_MAX_AGE",
    "REDIS_URL",
}


def test_the_pool_is_off_by_default_where_persistent_connections_fit() -> None:
    """3 workers x 4 threads + 2 Celery processes + beat = 15 of 16: persistent connections,
    health-checked, no pool."""
    assert _database() == [False, None, 60, True]
    # Exactly the budget still fits.
    assert _database(DB_CONNECTIONS_PER_INSTANCE="15")[0] is False


def test_the_pool_is_on_by_default_where_persistent_connections_would_not_fit() -> None:
    """Four instances of a 50-connection plan (12 each): 15 persistent connections would not
    fit, so each process gets a pool, whose default max is what fits: (12 - (2 + 1) x 2) / 3."""
    assert _database(DB_CONNECTIONS_PER_INSTANCE="12") == [
        True,
        {"min_size": 1, "max_size": 2, "timeout": 2.0},
        0,
        True,
    ]
    # More request threads than fit: 3 x 5 + 2 + 1 = 18 > 16.
    pooled, options, _, _ = _database(GUNICORN_THREADS="5")
    assert pooled is True and options["max_size"] == 3


def test_an_explicit_db_pool_wins_over_the_default() -> None:
    assert _database(DB_POOL="true")[:3] == [
        True,
        {"min_size": 1, "max_size": 3, "timeout": 2.0},
        0,
    ]
    assert _database(DB_POOL="false", DB_CONNECTIONS_PER_INSTANCE="12") == [False, None, 60, True]
    # Tests run without the pool unless told (several assert what one connection does).
    assert _database(DJANGO_ENV="test", DB_CONNECTIONS_PER_INSTANCE="12")[0] is False


def test_manage_py_check_reports_the_budget_it_exceeds() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in _BUDGET_VARIABLES},
        "DJANGO_ENV": "development",
        "DATABASE_URL": _POSTGRES_URL,
        "WEB_CONCURRENCY": "4",
        "DB_POOL": "true",
        "DB_POOL_MAX": "6",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--tag", "database"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    assert "chefops.W010" in out.stderr + out.stdout
    assert "4 web workers x 6 + 2 Celery processes x 2 + 1 beat x 2 = 30" in out.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pooled_gunicorn_workers_stay_within_their_pools(tmp_path: Path) -> None:
    """2 workers x 3 threads, pools of at most 2: under 6 concurrent requests at a time, the
    server never sees more than 4 connections of this gunicorn, and every request succeeds."""
    params = connection.settings_dict
    app = f"pooltest-{uuid.uuid4().hex[:8]}"
    url = (
        f"postgres://{params['USER'] or 'postgres'}@{params['HOST'] or '127.0.0.1'}:"
        f"{params['PORT'] or 5432}/{params['NAME']}?application_name={app}"
    )
    env = server_env(
        tmp_path,
        {
            "DATABASE_URL": url,
            "DB_POOL": "true",
            "DB_POOL_MIN": "1",
            "DB_POOL_MAX": "2",
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "3",
        },
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        with psycopg.connect(
            host=params["HOST"] or "127.0.0.1",
            port=params["PORT"] or 5432,
            user=params["USER"] or "postgres",
            dbname=params["NAME"],
            autocommit=True,
        ) as probe:
            while not stop.is_set():
                row = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app]
                ).fetchone()
                peak = max(peak, row[0] if row else 0)
                stop.wait(0.02)  # sampling interval of the probe, not a wait for an outcome

    with running_gunicorn(env, tmp_path) as server:
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(max_workers=12) as clients:
                statuses = list(
                    clients.map(lambda _: http_get(f"{server.base}/api/health")[0], range(120))
                )
        finally:
            stop.set()
            sampler.join(timeout=60)
    assert statuses == [200] * 120
    assert 1 <= peak <= 2 * 2, peak
