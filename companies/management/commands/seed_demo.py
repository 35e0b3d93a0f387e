"""`manage.py seed_demo`: wipe and load the demo data set, then print the logins."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from chefops.demo import run_seeders
from companies.demo import DEMO_PASSWORD, demo_logins


class Command(BaseCommand):
    help = "Wipe companies, contracts and service days and load the demo data set."

    def handle(self, *args: Any, **options: Any) -> None:
        for summary in run_seeders(today=timezone.now().date()):
            self.stdout.write(summary)
        self.stdout.write(f"\nDemo logins (password {DEMO_PASSWORD}):")
        for login in demo_logins():
            self.stdout.write(
                f"  {login.email:<36} {login.role:<9} {login.company} ({login.company_type})"
            )
