from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from chefops.schedule import MANAGED_PREFIX, SCHEDULE
from chefops.testing.settings_probe import REQUIRED_IN_PRODUCTION, django_setup


def test_production_refuses_to_start_without_its_secrets() -> None:
    result = django_setup({"DJANGO_ENV": "production"})
    assert result.returncode != 0
    assert (
        "DJANGO_ENV=production refuses to start without: SECRET_KEY, DATABASE_URL, REDIS_URL, "
        "ALLOWED_HOSTS, METRICS_TOKEN (or METRICS_PUBLIC=true if the network keeps /metrics "
        "private)"
    ) in result.stderr
    result = django_setup({**REQUIRED_IN_PRODUCTION, "SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "SECRET_KEY must be a random string" in result.stderr


def test_production_starts_with_its_secrets_and_is_secure() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.LOG_JSON)"
    )
    result = django_setup(REQUIRED_IN_PRODUCTION, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "31536000", "True"]


# /metrics through the whole middleware stack of the started settings: status without and
# with the bearer token. The database and Redis are unreachable: a scrape reports that.
_SCRAPE = (
    "from django.test import Client; c = Client(); "
    "a = c.get('/metrics'); "
    "b = c.get('/metrics', headers={'authorization': 'Bearer scrape-token-for-tests'}); "
    "print(a.status_code, b.status_code, b'chefops_database_up 0.0' in b.content)"
)


@pytest.mark.parametrize("django_env", ["production", "staging"])
def test_production_like_metrics_need_a_token_or_an_explicit_public_opt_out(
    django_env: str, tmp_path: Path
) -> None:
    """/metrics without a token is public: staging and production refuse to start so unless
    METRICS_PUBLIC=true says the network keeps the endpoint private."""
    base = {**REQUIRED_IN_PRODUCTION, "DJANGO_ENV": django_env, "RUN_DIR": str(tmp_path)}
    del base["METRICS_TOKEN"]

    refused = django_setup({**base, "METRICS_TOKEN": "", "METRICS_PUBLIC": "false"})
    assert refused.returncode != 0
    assert (
        f"DJANGO_ENV={django_env} refuses to start without: METRICS_TOKEN (or "
        "METRICS_PUBLIC=true if the network keeps /metrics private)"
    ) in refused.stderr

    with_token = django_setup({**base, "METRICS_TOKEN": "scrape-token-for-tests"}, _SCRAPE)
    assert with_token.returncode == 0, with_token.stderr
    assert with_token.stdout.split() == ["401", "200", "True"]

    public = django_setup({**base, "METRICS_PUBLIC": "true"}, _SCRAPE)
    assert public.returncode == 0, public.stderr
    assert public.stdout.split()[0] == "200"  # no Authorization header needed


def test_unknown_django_env_is_refused() -> None:
    result = django_setup({"DJANGO_ENV": "prod"})
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
