"""The connection budget (README "Scaling"): the pool's size, the system check, and a real
gunicorn whose pooled workers stay within workers x DB_POOL_MAX server connections."""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parents[2]


def _budget(settings: Any, **values: Any) -> list[Any]:
    settings.IS_POSTGRES = True
    settings.DB_POOL = True
    for name, value in values.items():
        setattr(settings, name, value)
    return database_connection_budget()


def test_the_defaults_fit_one_instances_share(settings: Any) -> None:
    found = _budget(
        settings,
        DB_WEB_WORKERS=3,
        DB_POOL_MAX=4,
        DB_POOL_MIN=1,
        DB_CELERY_PROCESSES=2,
        DB_CONNECTIONS_PER_INSTANCE=16,
    )
    assert found == []
    assert connection_budget() == (
        15,
        "3 web workers x 4 + 2 Celery processes x 1 + 1 beat x 1 = 15",
    )


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
    assert "4 web workers x 4 + 2 Celery processes x 2 + 1 beat x 2 = 22" in found[0].msg
    assert "DB_CONNECTIONS_PER_INSTANCE=16" in found[0].msg


def test_without_a_pool_every_request_thread_may_keep_a_connection(settings: Any) -> None:
    settings.DB_WEB_THREADS = 8
    found = _budget(
        settings,
        DB_POOL=False,
        DB_WEB_WORKERS=3,
        DB_CELERY_PROCESSES=2,
        DB_CONNECTIONS_PER_INSTANCE=16,
    )
    settings.DB_POOL = False
    assert connection_budget()[0] == 3 * 8 + 2 + 1
    assert [m.id for m in found] == ["chefops.W010"]


def test_sqlite_has_no_budget(settings: Any) -> None:
    settings.IS_POSTGRES = False
    settings.DB_CONNECTIONS_PER_INSTANCE = 1
    assert database_connection_budget() == []


def test_manage_py_check_reports_it_and_the_default_pool_follows_the_budget() -> None:
    env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "DATABASE_URL": "postgres://probe@127.0.0.1:1/probe",  # never connected to
        "WEB_CONCURRENCY": "4",
        "DB_POOL_MAX": "6",
    }
    env.pop("REDIS_URL", None)
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
    assert "4 web workers x 6 + 2 Celery processes x 1 + 1 beat x 1 = 27" in out.stderr
    # Four instances of a 50-connection plan: 12 each, and the pool shrinks to fit.
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.DB_POOL_MAX)"
    env.update(DB_CONNECTIONS_PER_INSTANCE="12", WEB_CONCURRENCY="3")
    env.pop("DB_POOL_MAX")
    env["DJANGO_SETTINGS_MODULE"] = "chefops.settings"
    shown = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    assert shown.stdout.strip().splitlines()[-1] == "3"


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
