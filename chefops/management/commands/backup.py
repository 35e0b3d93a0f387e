from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils import timezone

from chefops.ops import storage
from chefops.ops.backups import (
    BACKUP_STAMP_FORMAT,
    backup_files,
    backup_storage,
    matching_pg_tool,
    pg_tool_error,
    require_postgres,
    run_pg_tool,
)
from chefops.ops.reports import human_bytes


class _DumpFile(File):
    """A dump on disk: storages that can (S3, chefops/ops/storage_s3.py) upload it from its path
    in parts instead of reading it into memory."""

    def __init__(self, file: IO[bytes], path: Path) -> None:
        super().__init__(file, name=path.name)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


class Command(BaseCommand):
    help = (
        "Full backup of the PostgreSQL database with pg_dump (custom format) into the backup "
        "storage (BACKUP_STORAGE_URL, by default BACKUP_DIR) as chefops-<UTC timestamp>.dump, "
        "then delete backups older than BACKUP_RETENTION_DAYS. Prints where it went and its "
        "size."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dir", help="Back up into this local directory instead of the backup storage"
        )
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
        require_postgres("backup")
        pg_dump = matching_pg_tool("pg_dump")
        folder = Path(options["dir"]) if options["dir"] else None
        backups = backup_storage(folder)
        retention = options["retention_days"]
        if retention is None:
            retention = settings.BACKUP_RETENTION_DAYS
        if retention < 1:
            raise CommandError("--retention-days must be at least 1")
        database = connections["default"].settings_dict["NAME"]
        name = self._target(backups)
        where = storage.location_of(backups, name)
        cutoff = timezone.now() - timedelta(days=retention)
        expired = [b for b in backup_files(folder) if b.taken_at < cutoff]
        if options["dry_run"]:
            self.stdout.write(
                f"dry run: would back up database {database} to {where} and delete "
                f"{len(expired)} backup(s) older than {retention} days"
                + "".join(f"\n  would delete {b.name}" for b in expired)
            )
            return

        started = time.monotonic()
        root = storage.local_root(backups)
        if root is not None:
            size = self._dump_local(pg_dump, root / name)
        else:
            size = self._dump_to_storage(pg_dump, backups, name)
        elapsed = time.monotonic() - started

        deleted = 0
        for backup in expired:
            if backup.name != name:
                backups.delete(backup.name)
                deleted += 1
        self.stdout.write(
            f"backup {where} ({human_bytes(size)}, {size} bytes) of database {database} "
            f"in {elapsed:.1f}s; deleted {deleted} backup(s) older than {retention} days"
        )

    @staticmethod
    def _pg_dump(pg_dump: str, into: Path) -> None:
        result = run_pg_tool(
            [
                pg_dump,
                "--format=custom",
                "--no-password",
                "--lock-wait-timeout=60s",
                f"--file={into}",
            ]
        )
        if result.returncode != 0:
            into.unlink(missing_ok=True)
            raise pg_tool_error("pg_dump", result)

    def _dump_local(self, pg_dump: str, target: Path) -> int:
        # pg_dump writes to a side file: a failed or interrupted dump never looks like a backup.
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        self._pg_dump(pg_dump, partial)
        os.replace(partial, target)
        return target.stat().st_size

    def _dump_to_storage(self, pg_dump: str, backups: Storage, name: str) -> int:
        # pg_dump writes a temporary file, which is then streamed to the storage (multipart
        # for S3: the object appears only once complete, and never sits whole in memory).
        with tempfile.TemporaryDirectory(prefix="chefops-backup-") as scratch:
            local = Path(scratch) / name
            self._pg_dump(pg_dump, local)
            size = local.stat().st_size
            with local.open("rb") as fh:
                saved = backups.save(name, _DumpFile(fh, local))
        if saved != name:
            raise CommandError(f"the backup storage saved {name} as {saved}")
        return size

    @staticmethod
    def _target(backups: Storage) -> str:
        stamp = timezone.now().strftime(BACKUP_STAMP_FORMAT)
        name = f"chefops-{stamp}.dump"
        suffix = 1
        while backups.exists(name):  # two backups within one second
            name = f"chefops-{stamp}-{suffix}.dump"
            suffix += 1
        return name
