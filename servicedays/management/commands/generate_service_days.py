from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from servicedays import jobs


class Command(BaseCommand):
    help = (
        "Insert the missing service days of every ACTIVE contract for today .. today+N (UTC). "
        "Idempotent; skips if another run holds the lock."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=jobs.DEFAULT_GENERATION_DAYS,
            help="Window length after today (default 7: today .. today+7, eight dates).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if not 0 <= days <= 365:
            raise CommandError("--days must be between 0 and 365")
        summary = jobs.service_days_generate_upcoming(days=days)
        self.stdout.write(summary.line())
