"""Celery application: configured from Django settings (CELERY_*), keeping Django's logging."""

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chefops.settings")

app = Celery("chefops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _ensure_filesystem_broker_folders() -> None:
    """Without REDIS_URL the broker is a folder; create it so both web and worker can use it."""
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
