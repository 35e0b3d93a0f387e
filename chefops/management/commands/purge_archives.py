from __future__ import annotations

from chefops.management.retention_command import RetentionCommand, step_purge
from chefops.ops import retention


class Command(RetentionCommand):
    help = "Delete archives in the archive storage whose date is more than one year old."

    batch_unit = "archives per run"
    purge = step_purge(retention.archives_purge)
