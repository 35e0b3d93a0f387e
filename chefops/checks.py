"""System checks of the deployment (``manage.py check``; the release phase's ``migrate`` runs
them too): the Redis servers' eviction policy, README "Redis"."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

from chefops import dbbudget, redis_layout

REDIS_TAG = "redis"


@checks.register(REDIS_TAG)
def redis_eviction_policy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning per Redis server whose ``maxmemory-policy`` may lose what it holds (queued
    tasks, job stamps) or refuse the cache's invalidations; an info where ``CONFIG GET`` is
    refused (managed Redis), a warning where a database cannot be selected."""
    findings = redis_layout.server_findings(settings.CACHE_URL, settings.REDIS_BROKER_URL)
    return [
        (checks.Warning if finding.level == "warning" else checks.Info)(
            finding.message, id=finding.id
        )
        for finding in findings
    ]


DATABASE_TAG = "database"


def connection_budget() -> tuple[int, str]:
    """Server connections one instance may hold at most, and how (chefops/dbbudget.py): every
    gunicorn worker its whole pool (``DB_POOL_MAX``), or without a pool a persistent connection
    per request thread; every Celery worker process and beat one persistent connection, or with
    a pool ``max(DB_POOL_MIN, 1) + 1`` (beat was measured holding 2)."""
    processes = dbbudget.Processes(
        web_workers=settings.DB_WEB_WORKERS,
        web_threads=settings.DB_WEB_THREADS,
        celery_processes=settings.DB_CELERY_PROCESSES,
        pool=settings.DB_POOL,
        pool_min=settings.DB_POOL_MIN,
        pool_max=settings.DB_POOL_MAX,
    )
    return processes.total(), processes.arithmetic()


@checks.register(DATABASE_TAG)
def database_connection_budget(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning when the processes of one instance may open more PostgreSQL connections than
    ``DB_CONNECTIONS_PER_INSTANCE`` (README "Scaling")."""
    if not settings.IS_POSTGRES:
        return []
    total, arithmetic = connection_budget()
    if total <= settings.DB_CONNECTIONS_PER_INSTANCE:
        return []
    return [
        checks.Warning(
            f"One instance may open {total} PostgreSQL connections ({arithmetic}), more than "
            f"DB_CONNECTIONS_PER_INSTANCE={settings.DB_CONNECTIONS_PER_INSTANCE}.",
            hint=(
                "Lower WEB_CONCURRENCY, GUNICORN_THREADS or CELERY_WORKER_CONCURRENCY (with "
                "DB_POOL=true: DB_POOL_MAX or DB_POOL_MIN), or raise the budget if the database "
                "allows it; README 'Scaling' has the arithmetic."
            ),
            id="chefops.W010",
        )
    ]


# Django's security.W002/W003 match the middleware's exact dotted path; the settings install
# subclasses that skip /api and /metrics, so these checks accept any subclass instead.
PROTECTIONS = (
    ("chefops.W002", XFrameOptionsMiddleware, "the clickjacking protection (X-Frame-Options)"),
    ("chefops.W003", CsrfViewMiddleware, "the cross-site request forgery protection"),
)


@checks.register(checks.Tags.security, deploy=True)
def browser_protections(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    installed = [import_string(path) for path in settings.MIDDLEWARE]
    return [
        checks.Warning(
            f"No {base.__module__}.{base.__name__} (or a subclass) in MIDDLEWARE: the admin "
            f"pages are served without {what}.",
            id=check_id,
        )
        for check_id, base, what in PROTECTIONS
        if not any(isinstance(cls, type) and issubclass(cls, base) for cls in installed)
    ]
