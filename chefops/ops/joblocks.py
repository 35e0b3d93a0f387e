"""Exactly one run per period of each scheduled job, even with two beats (README "Scaling").

Only one beat may run per deployment, but a second one started by mistake (or a tick's late
redelivery) enqueues every job twice. Two mechanisms make the second copy a no-op, both safe
behind PgBouncer in transaction mode (nothing outlives a transaction):

* **A period claim** (``claim_period``), for jobs that run in one transaction (generation,
  fallback): in the job's own transaction, the job's row in ``ScheduledJob`` moves its
  ``last_period`` to the current period, if it is older. A concurrent run waits on that row
  lock and then finds the period taken; a run that fails rolls its claim back with its work,
  so Celery's redelivery (late acks) can still do the period's work.
* **A lease** (``job_lease``), for a job that commits per batch (retention): one autocommitted
  UPDATE takes the row's lease for ``ttl`` unless another holder's lease is current, and
  (``once_per_period``) unless the period is already done; the end of the run clears it and,
  on success, records the period. A holder that dies leaves a lease that expires after
  ``ttl``. This replaces a session-level advisory lock, which PgBouncer's transaction mode
  would tie to whichever server connection happened to run it.

The outbox sweep needs neither: its claims are per event (``FOR UPDATE SKIP LOCKED``, and the
ledger of processed events), so two sweeps at once share the due events (outbox/dispatcher.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chefops.models import ScheduledJob
from chefops.ops.jobs import JOB_PERIODS

logger = logging.getLogger("chefops.ops.jobs")


def period_start(job: str, now: datetime | None = None) -> datetime:
    """Start of the period of ``job`` (JOB_PERIODS) that ``now`` falls in, aligned on the
    epoch in UTC: the day for daily jobs, the hour for hourly ones."""
    seconds = JOB_PERIODS[job]
    stamp = int((now or timezone.now()).timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, tz=UTC)


def _ensure_row(job: str) -> None:
    ScheduledJob.objects.bulk_create([ScheduledJob(job=job)], ignore_conflicts=True)


def claim_period(job: str, now: datetime | None = None) -> bool:
    """Claim the current period of ``job`` in the caller's transaction; False when a run of
    this period already claimed it (or holds the claim in a transaction not yet committed: this
    waits for it, then sees it). Must run inside ``transaction.atomic()``."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("claim_period must run inside the job's transaction")
    period = period_start(job, now)
    _ensure_row(job)
    claimed = (
        ScheduledJob.objects.filter(job=job)
        .filter(Q(last_period__isnull=True) | Q(last_period__lt=period))
        .update(last_period=period)
    )
    if not claimed:
        logger.info("%s: the run of the period from %s already happened; skipped", job, period)
    return bool(claimed)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-100:]


def acquire_lease(job: str, holder: str, ttl: timedelta, *, once_per_period: bool = False) -> bool:
    """Take the lease of ``job`` for ``ttl`` (one autocommitted UPDATE); False while another
    holder's lease is current or, with ``once_per_period``, when this period's run is done."""
    now = timezone.now()
    _ensure_row(job)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    rows = ScheduledJob.objects.filter(free, job=job)
    if once_per_period:
        period = period_start(job, now)
        rows = rows.filter(Q(last_period__isnull=True) | Q(last_period__lt=period))
    return bool(rows.update(lease_holder=holder, lease_expires_at=now + ttl))


def release_lease(job: str, holder: str, *, done: bool = False) -> None:
    """End ``holder``'s lease; ``done`` records this period's run as complete."""
    fields: dict[str, object] = {"lease_holder": "", "lease_expires_at": None}
    if done:
        fields["last_period"] = period_start(job)
    ScheduledJob.objects.filter(job=job, lease_holder=holder).update(**fields)


@contextlib.contextmanager
def job_lease(job: str, ttl: timedelta, *, once_per_period: bool = False) -> Iterator[bool]:
    """``acquire_lease`` for the body of the ``with`` (yields whether it was acquired); the
    lease is released at the end, and the period recorded as done if the body succeeded."""
    holder = holder_id()
    acquired = acquire_lease(job, holder, ttl, once_per_period=once_per_period)
    if not acquired:
        yield False
        return
    succeeded = False
    try:
        yield True
        succeeded = True
    finally:
        release_lease(job, holder, done=succeeded and once_per_period)


def skip_reason(job: str) -> str:
    """Why ``acquire_lease`` refused (for the job's log line)."""
    row = ScheduledJob.objects.filter(job=job).first()
    if row and row.lease_expires_at and row.lease_expires_at > timezone.now():
        return "another run in progress"
    return "this period's run already happened"
