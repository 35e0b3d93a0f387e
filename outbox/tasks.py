"""Celery task of the outbox: the dispatcher run by beat every 5 s and by the commit nudge."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from chefops.ops.jobs import record_job_success
from outbox.dispatcher import default_worker_id
from outbox.services import outbox_dispatch

logger = logging.getLogger("chefops.outbox")

# A run stops starting work after this long, so a backlog is shared out between the nudges and
# the 5 s beat sweep instead of one task hogging a worker; each run is bounded.
DISPATCH_BUDGET_SECONDS = 4.0


@shared_task(name="outbox.dispatch", ignore_result=True, soft_time_limit=60, time_limit=90)
def dispatch() -> int:
    """Dispatch due events for up to ~4 s. Safe to run on several workers at once: claims use
    SKIP LOCKED. The soft time limit is a safety net for a stuck handler: the dispatcher
    releases its unfinished events before the task gives up."""
    try:
        stats = outbox_dispatch(
            budget_seconds=DISPATCH_BUDGET_SECONDS, worker_id=f"celery:{default_worker_id()}"
        )
    except SoftTimeLimitExceeded:
        logger.warning("outbox.dispatch hit its soft time limit; unfinished events released")
        return 0
    if stats.claimed:
        logger.info("outbox.dispatch: %s", stats.summary())
    record_job_success("outbox_dispatch")
    return stats.processed
