from __future__ import annotations

from django.core.management.base import CommandError

from chefops.management.retention_command import RetentionCommand
from chefops.ops import retention
from chefops.ops.jobs import record_job_success
from chefops.ops.retention_tasks import retention_lock


class Command(RetentionCommand):
    help = (
        "Run every retention step (deleted companies, processed outbox events, expired tokens, "
        "old archives) and print a one-line summary."
    )

    def purge(self, *, dry_run: bool, batch_size: int) -> str:
        with retention_lock() as acquired:
            if not acquired:
                raise CommandError("another retention_purge run holds the lock")
            summary = retention.retention_purge_all(dry_run=dry_run, batch_size=batch_size)
        if not dry_run:
            record_job_success("retention_purge")
        return summary
