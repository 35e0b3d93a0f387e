from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from servicedays import jobs


class Command(BaseCommand):
    help = (
        "Give every unconfirmed service day past its notice deadline the contract minimum "
        "(ACTIVE contracts only). Idempotent; skips if another run holds the lock."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would change and change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = jobs.service_days_apply_fallback(dry_run=options["dry_run"])
        if options["dry_run"]:
            for day in summary.days:
                self.stdout.write(
                    f"  {day['service_date']} contract {day['contract_id']} "
                    f"day {day['service_day_id']} -> {day['applied_quantity']}"
                )
        self.stdout.write(summary.line())
