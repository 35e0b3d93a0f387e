"""Daily Celery task ``chefops.retention_purge`` (imported by chefops/tasks.py)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta

from celery import shared_task

from chefops.ops.joblocks import job_lease, skip_reason
from chefops.ops.jobs import record_job_success
from chefops.ops.retention import retention_purge_all

logger = logging.getLogger(__name__)

JOB = "retention_purge"
# A run commits per batch, so it cannot hold a transaction-level lock throughout, and a
# session-level one is unsafe behind PgBouncer (transaction mode): a lease row instead
# (chefops/ops/joblocks.py). A run that dies leaves its lease to expire after this long, well
# before the next day's run; no run lasts nearly as long (the task's hard limit is minutes).
LEASE_TTL = timedelta(hours=6)


@contextlib.contextmanager
def retention_lock(*, once_per_period: bool = False) -> Iterator[bool]:
    """Yields whether this run may purge: no other run holds the lease and, for the daily
    task (``once_per_period``), today's run has not happened yet (two beats enqueue it twice).
    A manual run (``manage.py retention_purge``) only needs the lease."""
    with job_lease(JOB, LEASE_TTL, once_per_period=once_per_period) as acquired:
        yield acquired


@shared_task(name="chefops.retention_purge", ignore_result=True)
def retention_purge() -> str:
    with retention_lock(once_per_period=True) as acquired:
        if not acquired:
            reason = skip_reason(JOB)
            logger.warning("retention_purge: skipped, %s", reason)
            return f"retention_purge: skipped, {reason}"
        summary = retention_purge_all()
    record_job_success("retention_purge")
    logger.info(summary)
    return summary
