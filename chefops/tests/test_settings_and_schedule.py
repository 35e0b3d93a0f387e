from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from chefops.schedule import MANAGED_PREFIX, SCHEDULE

ROOT = Path(__file__).resolve().parents[2]


def _django_setup(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"}
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_its_secrets() -> None:
    result = _django_setup({"DJANGO_ENV": "production"})
    assert result.returncode != 0
    assert "refuses to start without: SECRET_KEY, DATABASE_URL, REDIS_URL, ALLOWED_HOSTS" in (
        result.stderr
    )
    result = _django_setup(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": "short",
            "DATABASE_URL": "postgres://x@127.0.0.1/x",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "ALLOWED_HOSTS": "chefops.example.com",
        }
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be a random string" in result.stderr


def test_production_starts_with_its_secrets_and_is_secure() -> None:
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": "k" * 20 + "Zq8!" * 10,
        "DATABASE_URL": "postgres://x@127.0.0.1/x",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "ALLOWED_HOSTS": "chefops.example.com",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.LOG_JSON)"
    )
    full_env = {**os.environ, **env}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "31536000", "True"]


def test_unknown_django_env_is_refused() -> None:
    result = _django_setup({"DJANGO_ENV": "prod"})
    assert result.returncode != 0
    assert "DJANGO_ENV must be" in result.stderr


@pytest.mark.django_db
def test_beat_schedule_sync_is_idempotent() -> None:
    call_command("sync_beat_schedule")
    first = {
        t.name: (t.task, t.interval_id, t.crontab_id)
        for t in PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX)
    }
    assert set(first) == {MANAGED_PREFIX + job.name for job in SCHEDULE}
    call_command("sync_beat_schedule")
    second = {
        t.name: (t.task, t.interval_id, t.crontab_id)
        for t in PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX)
    }
    assert first == second
    # A stale managed task is removed; an operator's own task is left alone.
    PeriodicTask.objects.create(
        name=MANAGED_PREFIX + "old job", task="x", interval=PeriodicTask.objects.first().interval
    )
    PeriodicTask.objects.create(
        name="operator job", task="y", interval=PeriodicTask.objects.first().interval
    )
    call_command("sync_beat_schedule")
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert MANAGED_PREFIX + "old job" not in names
    assert "operator job" in names
    dispatch = PeriodicTask.objects.get(name=MANAGED_PREFIX + "outbox dispatch")
    assert dispatch.interval.every == 5 and dispatch.task == "outbox.dispatch"
