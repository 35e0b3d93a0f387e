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
]

MANAGED_PREFIX = "chefops: "
