from __future__ import annotations

from chefops.management.retention_command import RetentionCommand, step_purge
from chefops.ops import retention


class Command(RetentionCommand):
    help = (
        "Append PROCESSED outbox events older than 30 days to the outbox archive log, then "
        "delete them in batches (DEAD events are kept); also delete ledger rows older than "
        "30 days."
    )

    batch_unit = "rows per batch"
    purge = step_purge(retention.outbox_events_purge)
