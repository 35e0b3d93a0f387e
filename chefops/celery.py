"""Celery application: configured from Django settings (CELERY_*), keeping Django's logging."""

import logging
import os

from celery import Celery
from celery.signals import setup_logging, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chefops.settings")

app = Celery("chefops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _ensure_filesystem_broker_folders() -> None:
    """Without a Redis broker (REDIS_URL / CELERY_BROKER_URL) the broker is a folder; create it
    so both web and worker can use it."""
    from pathlib import Path

    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    for key in ("data_folder_in", "data_folder_out"):
        if folder := options.get(key):
            Path(folder).mkdir(parents=True, exist_ok=True)


_ensure_filesystem_broker_folders()


@setup_logging.connect
def _use_django_logging(**kwargs: object) -> None:
    """Keep the LOGGING dict of Django settings instead of Celery's own handlers."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@worker_ready.connect
def warn_about_redis_eviction(**kwargs: object) -> None:
    """At the worker's start, the Redis eviction check of ``manage.py check`` (README "Redis"):
    a policy that may evict queued tasks is worth a line in the worker's log."""
    from django.conf import settings

    from chefops import redis_layout

    log = logging.getLogger("chefops.redis")
    try:
        findings = redis_layout.server_findings(settings.CACHE_URL, settings.REDIS_BROKER_URL)
    except Exception:  # a start-up advice must never stop the worker
        log.warning("redis: eviction policy not checked", exc_info=True)
        return
    for finding in findings:
        level = logging.WARNING if finding.level == "warning" else logging.INFO
        log.log(level, "redis: %s (%s)", finding.message, finding.id)
