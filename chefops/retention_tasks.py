"""Daily Celery task ``chefops.retention_purge`` (imported by chefops/tasks.py)."""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Iterator

from celery import shared_task
from django.db import connection

from chefops.jobs import record_job_success
from chefops.retention import retention_purge_all

logger = logging.getLogger(__name__)

_LOCK_KEY = zlib.crc32(b"chefops.retention_purge")


@contextlib.contextmanager
def retention_lock() -> Iterator[bool]:
    """Session-level PostgreSQL advisory lock so two runs never overlap (always granted on
    SQLite, whose single writer serialises them anyway). Session-level because each step
    commits per batch; it is released in ``finally`` and by PostgreSQL if the worker dies."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


@shared_task(name="chefops.retention_purge", ignore_result=True)
def retention_purge() -> str:
    with retention_lock() as acquired:
        if not acquired:
            logger.warning("retention_purge: another run holds the lock; skipped")
            return "retention_purge: skipped, another run in progress"
        summary = retention_purge_all()
    record_job_success("retention_purge")
    logger.info(summary)
    return summary
