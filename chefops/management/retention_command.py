"""Shared shape of the retention commands: ``--dry-run``, ``--batch-size``, one-line summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chefops.ops import retention


class RetentionCommand(BaseCommand):
    batch_unit = "rows per batch"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Change nothing; report what would be removed"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.DEFAULT_BATCH_SIZE,
            help=f"{self.batch_unit} (default %(default)s)",
        )

    def purge(self, *, dry_run: bool, batch_size: int) -> str:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        self.stdout.write(self.purge(dry_run=options["dry_run"], batch_size=options["batch_size"]))


def step_purge(step: Callable[..., Any]) -> Callable[..., str]:
    """Adapt a retention step (returning a result with ``summary()``) to ``purge``."""

    def purge(self: RetentionCommand, *, dry_run: bool, batch_size: int) -> str:
        return str(step(dry_run=dry_run, batch_size=batch_size).summary())

    return purge
