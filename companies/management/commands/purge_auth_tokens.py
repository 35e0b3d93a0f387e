"""`manage.py purge_auth_tokens`: delete expired sessions, refresh and one-time tokens."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from companies.models import AuthSession, OneTimeToken, RefreshToken
from companies.services import auth_tokens_purge_expired


class Command(BaseCommand):
    help = "Delete expired session families, refresh tokens and one-time tokens (daily job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count what would go.")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options["dry_run"]:
            counts = {
                "sessions": AuthSession.objects.filter(expires_at__lte=now).count(),
                "refresh_tokens": RefreshToken.objects.filter(expires_at__lte=now).count(),
                "one_time_tokens": OneTimeToken.objects.filter(expires_at__lte=now).count(),
            }
            prefix = "would delete"
        else:
            counts = auth_tokens_purge_expired(now=now, batch_size=options["batch_size"])
            prefix = "deleted"
        self.stdout.write(f"{prefix}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
