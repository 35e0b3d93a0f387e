"""The release step of a deploy: the Railway web service's `preDeployCommand`
(deploy/railway/web.json) and the Procfile's `release:` line. One command, so the platform runs
one program without a shell (`a && b` would need one)."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Before the new release serves: apply the migrations (backward-compatible by policy), "
        "then make beat's periodic tasks match chefops.schedule. Exits non-zero on a failure, "
        "which stops the deploy."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options.get("verbosity", 1)
        call_command("migrate", interactive=False, verbosity=verbosity, stdout=self.stdout)
        call_command("sync_beat_schedule", verbosity=verbosity, stdout=self.stdout)
        self.stdout.write("predeploy: migrations applied, beat schedule in sync")
