"""`manage.py seed_demo`: wipe and load the demo data set, then print the logins.

``--if-empty`` is what `make run` uses on every start: it loads the demo set only into a
database that has no company at all, so restarting `make run` never wipes what a developer
registered or changed since (`make run SEED=1` and `make reset` reload on purpose).
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from chefops.demo import run_seeders
from companies.demo import DEMO_PASSWORD, DemoLogin, demo_logins
from companies.models import Company, User


class Command(BaseCommand):
    help = "Wipe companies, contracts and service days and load the demo data set."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help=(
                "Load only when the database has no company (soft-deleted ones count); "
                "otherwise keep every row and print the demo logins that still exist."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logins = demo_logins()
        if options["if_empty"]:
            # Company.objects is the plain manager: soft-deleted companies are rows a
            # developer may still undelete, so they make the database "not empty" too.
            companies = Company.objects.count()
            if companies:
                self.stdout.write(
                    f"Demo data not reloaded: the database already has {companies} "
                    f"compan{'y' if companies == 1 else 'ies'} "
                    "(`make run SEED=1` or `make reset` reloads it)."
                )
                existing = set(
                    User.objects.filter(email__in=[login.email for login in logins]).values_list(
                        "email", flat=True
                    )
                )
                self._write_logins([login for login in logins if login.email in existing])
                return
        for summary in run_seeders(today=timezone.now().date()):
            self.stdout.write(summary)
        self._write_logins(logins)

    def _write_logins(self, logins: list[DemoLogin]) -> None:
        if not logins:
            return
        self.stdout.write(f"\nDemo logins (password {DEMO_PASSWORD}):")
        for login in logins:
            self.stdout.write(
                f"  {login.email:<36} {login.role:<9} {login.company} ({login.company_type})"
            )
