from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils import timezone

from chefops import ops


class Command(BaseCommand):
    help = (
        "Full backup of the PostgreSQL database with pg_dump (custom format) into BACKUP_DIR as "
        "chefops-<UTC timestamp>.dump, then delete backups older than BACKUP_RETENTION_DAYS. "
        "Prints the path and size."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", help="Backup directory (default: BACKUP_DIR)")
        parser.add_argument(
            "--retention-days",
            type=int,
            help="Delete chefops-*.dump files older than this (default: BACKUP_RETENTION_DAYS)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Take no backup and delete nothing; say what would happen",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ops.require_postgres("backup")
        folder = Path(options["dir"] or settings.BACKUP_DIR)
        retention = options["retention_days"]
        if retention is None:
            retention = settings.BACKUP_RETENTION_DAYS
        if retention < 1:
            raise CommandError("--retention-days must be at least 1")
        database = connections["default"].settings_dict["NAME"]
        target = self._target(folder)
        cutoff = timezone.now() - timedelta(days=retention)
        expired = [b for b in ops.backup_files(folder) if b.taken_at < cutoff]
        if options["dry_run"]:
            self.stdout.write(
                f"dry run: would back up database {database} to {target} and delete "
                f"{len(expired)} backup(s) older than {retention} days"
                + "".join(f"\n  would delete {b.path.name}" for b in expired)
            )
            return

        folder.mkdir(parents=True, exist_ok=True)
        # pg_dump writes to a side file: a failed or interrupted dump never looks like a backup.
        partial = target.with_name(target.name + ".partial")
        started = time.monotonic()
        result = ops.run_pg_tool(
            [
                "pg_dump",
                "--format=custom",
                "--no-password",
                "--lock-wait-timeout=60s",
                f"--file={partial}",
            ]
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise ops.pg_tool_error("pg_dump", result)
        os.replace(partial, target)
        elapsed = time.monotonic() - started

        deleted = 0
        for backup in expired:
            if backup.path != target:
                backup.path.unlink(missing_ok=True)
                deleted += 1
        size = target.stat().st_size
        self.stdout.write(
            f"backup {target} ({ops.human_bytes(size)}, {size} bytes) of database {database} "
            f"in {elapsed:.1f}s; deleted {deleted} backup(s) older than {retention} days"
        )

    def _target(self, folder: Path) -> Path:
        stamp = timezone.now().strftime(ops.BACKUP_STAMP_FORMAT)
        target = folder / f"chefops-{stamp}.dump"
        suffix = 1
        while target.exists():  # two backups within one second
            target = folder / f"chefops-{stamp}-{suffix}.dump"
            suffix += 1
        return target
