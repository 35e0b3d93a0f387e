from __future__ import annotations

from chefops import retention
from chefops.management.retention_command import RetentionCommand, step_purge


class Command(RetentionCommand):
    help = (
        "Archive (compressed JSON lines in the archive storage) and delete companies deleted more "
        "than 30 days ago, one per transaction."
    )

    batch_unit = "companies per run"
    purge = step_purge(retention.deleted_companies_purge)
