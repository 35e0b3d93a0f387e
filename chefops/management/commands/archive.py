from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, IntegrityError

from chefops.ops import retention


class Command(BaseCommand):
    help = (
        "List retention archives, or restore a company archive: "
        "archive list | archive restore <file>"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="List archives in the archive storage with date and size")
        restore = sub.add_parser(
            "restore", help="Load an archive back (one transaction; refuses existing rows)"
        )
        restore.add_argument(
            "file",
            help="A file on disk, or a name (as `archive list` prints it) in the archive storage",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            files = retention.archive_files()
            for item in files:
                self.stdout.write(f"{item.day.isoformat()}  {item.size:>10}  {item.name}")
            self.stdout.write(f"{len(files)} archive(s)")
            return
        try:
            counts = retention.archive_restore(options["file"])
        except FileNotFoundError as exc:
            raise CommandError(f"archive not found: {options['file']}") from exc
        except (OSError, ValueError, LookupError) as exc:
            raise CommandError(f"not a readable archive: {exc}") from exc
        except retention.ArchiveConflict as exc:
            raise CommandError(f"refused: {exc}; nothing was restored") from exc
        except IntegrityError as exc:
            raise CommandError(
                f"refused: {exc}; nothing was restored (a referenced company may be in another "
                "archive: restore that one first)"
            ) from exc
        except DatabaseError as exc:
            raise CommandError(f"restore failed, nothing was restored: {exc}") from exc
        total = sum(counts.values())
        detail = ", ".join(f"{label} {n}" for label, n in counts.items())
        self.stdout.write(f"restored {total} row(s) from {options['file']}: {detail}")
