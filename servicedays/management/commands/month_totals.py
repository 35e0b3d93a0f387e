from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from chefops import readcache
from servicedays import month_totals


class Command(BaseCommand):
    help = (
        "Check that the per-contract monthly sums the finance metrics read "
        "(servicedays_contractmonthtotal, kept by triggers) agree with the service days; "
        "exit 1 and list the first disagreeing rows when they do not. --rebuild recomputes "
        "the table from the days (writes to the days wait meanwhile). PostgreSQL only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help="Reinstall the triggers and recompute the whole table from the days.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError(
                "month_totals needs PostgreSQL: on SQLite the finance metrics sum the days "
                f"themselves (the configured database is {connection.vendor})"
            )
        with transaction.atomic(), connection.cursor() as cursor:
            if options["rebuild"]:
                month_totals.install(cursor)
                rows = month_totals.rebuild(cursor)
                # The finance metrics cached from the table before it was repaired are stale
                # (the tokens are replaced when this transaction commits).
                readcache.invalidate_all()
                self.stdout.write(f"month_totals: rebuilt, {rows} (contract, month) rows")
                return
            if not month_totals.installed(cursor):
                raise CommandError(
                    "month_totals: the triggers are missing or disabled; run "
                    "`manage.py month_totals --rebuild`"
                )
            wrong = month_totals.differences(cursor)
        if wrong:
            for contract_id, month, *pairs in wrong:
                sums = ", ".join(
                    f"{name} {pairs[2 * i]} (days: {pairs[2 * i + 1]})"
                    for i, name in enumerate(month_totals.COLUMNS)
                )
                self.stdout.write(f"  contract {contract_id} {month:%Y-%m}: {sums}")
            raise CommandError(
                f"month_totals: {len(wrong)}{'+' if len(wrong) >= 100 else ''} rows disagree "
                "with the days; `manage.py month_totals --rebuild` recomputes them"
            )
        self.stdout.write("month_totals: every row agrees with the service days")
