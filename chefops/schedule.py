"""The periodic schedule, defined in code and synced into django-celery-beat's tables.

`manage.py sync_beat_schedule` (release phase) makes the database match this list exactly for
the tasks it manages; it is idempotent. All times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: int | None = None
    crontab: str | None = None  # "minute hour day_of_month month_of_year day_of_week"
    expires_seconds: int | None = None


SCHEDULE: list[PeriodicJob] = [
    PeriodicJob(
        name="outbox dispatch", task="outbox.dispatch", every_seconds=5, expires_seconds=30
    ),
    # Queues the webhook deliveries whose retry is due (webhooks/services.py).
    PeriodicJob(name="webhook sweep", task="webhooks.sweep", every_seconds=10, expires_seconds=30),
    PeriodicJob(
        name="generate service days",
        task="servicedays.generate_upcoming",
        crontab="0 0 * * *",
        expires_seconds=3600,
    ),
    PeriodicJob(
        name="apply expected-quantity fallback",
        task="servicedays.apply_fallback",
        crontab="0 * * * *",
        expires_seconds=1800,
    ),
    # Also purges expired auth tokens (companies.auth_tokens_purge_expired).
    PeriodicJob(
        name="retention purge",
        task="chefops.retention_purge",
        crontab="0 4 * * *",
        expires_seconds=3600,
    ),
]

MANAGED_PREFIX = "chefops: "
