from __future__ import annotations

from chefops.management.retention_command import RetentionCommand, step_purge
from chefops.ops import retention


class Command(RetentionCommand):
    help = (
        "Archive (compressed JSON lines in the archive storage) and delete companies deleted more "
        "than 30 days ago, one per transaction."
    )

    batch_unit = "companies per run"
    purge = step_purge(retention.deleted_companies_purge)
