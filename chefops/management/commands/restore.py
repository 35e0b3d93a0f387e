from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from chefops import readcache
from chefops.ops import backups
from companies import principals


class Command(BaseCommand):
    help = (
        "Full restore of a `manage.py backup` file into the configured PostgreSQL database "
        "(pg_restore --clean --if-exists --no-owner, in one transaction: all or nothing). "
        "Replaces the data of every table in the backup; refuses without --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            help="A chefops-*.dump made by `manage.py backup`: a file on disk, or its name (or "
            "full location) in the backup storage",
        )
        parser.add_argument(
            "--yes", action="store_true", help="Confirm: overwrite the database with the backup"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and list what it holds; change nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backups.require_postgres("restore")
        pg_restore = backups.matching_pg_tool("pg_restore")
        with backups.local_backup(options["file"]) as path:
            self._restore(pg_restore, path, options)

    def _restore(self, pg_restore: str, path: Path, options: dict[str, Any]) -> None:
        given = options["file"]
        backups.check_backup_file(path)
        tables = backups.backup_table_names(path)
        database = connections["default"].settings_dict["NAME"]
        if options["dry_run"]:
            self.stdout.write(
                f"dry run: {given} is a valid backup with {len(tables)} tables; restoring it "
                f"would replace their data in database {database}"
            )
            return
        if not options["yes"]:
            raise CommandError(
                f"restore replaces the data of {len(tables)} tables in database {database} "
                f"with the content of {given}. Take a backup first, then re-run with --yes."
            )
        # Our own idle connection must not hold locks the restore's DROPs wait for.
        connections.close_all()
        started = time.monotonic()
        result = backups.run_pg_tool(
            [
                pg_restore,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--no-password",
                f"--dbname={database}",
                str(path),
            ]
        )
        if result.returncode != 0:
            error = backups.pg_tool_error("pg_restore", result)
            raise CommandError(f"restore failed, database left unchanged: {error}")
        # the data changed under every tenant's cached reads and cached principals
        readcache.invalidate_all()
        principals.invalidate_all()
        self.stdout.write(
            f"restored {given} into database {database}: {len(tables)} tables "
            f"in {time.monotonic() - started:.1f}s"
        )
