"""The scheduler's bookkeeping (chefops/ops/joblocks.py): one row per scheduled job."""

from __future__ import annotations

from django.db import models


class ScheduledJob(models.Model):
    """The last period a run of ``job`` claimed, and the lease of a run in progress.

    Two beats by mistake (or a beat tick and its late redelivery) enqueue a job twice; the
    run that claims the period does the work, the other skips. A job that spans many
    transactions (retention) holds a lease instead of a session-level lock: a row, so it works
    through PgBouncer in transaction mode, and it expires if its holder dies.
    """

    job = models.CharField(primary_key=True, max_length=64)
    last_period = models.DateTimeField(null=True, blank=True)
    lease_holder = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.job
