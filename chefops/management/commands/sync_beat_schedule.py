from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from chefops.schedule import MANAGED_PREFIX, SCHEDULE, PeriodicJob


def _schedule_kwargs(job: PeriodicJob) -> dict[str, Any]:
    if job.every_seconds is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=job.every_seconds, period=IntervalSchedule.SECONDS
        )
        return {"interval": interval, "crontab": None}
    assert job.crontab is not None
    minute, hour, day_of_month, month_of_year, day_of_week = job.crontab.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    return {"crontab": crontab, "interval": None}


class Command(BaseCommand):
    help = "Make django-celery-beat's periodic tasks match chefops.schedule (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        created = updated = removed = 0
        with transaction.atomic():
            wanted = set()
            for job in SCHEDULE:
                name = MANAGED_PREFIX + job.name
                wanted.add(name)
                fields = {
                    "task": job.task,
                    "enabled": True,
                    "expire_seconds": job.expires_seconds,
                    **_schedule_kwargs(job),
                }
                task = PeriodicTask.objects.filter(name=name).first()
                if task is None:
                    PeriodicTask.objects.create(name=name, **fields)
                    created += 1
                    continue
                changed = [k for k, v in fields.items() if getattr(task, k) != v]
                if changed:
                    for key in changed:
                        setattr(task, key, fields[key])
                    task.save()
                    updated += 1
            stale = PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX).exclude(
                name__in=wanted
            )
            removed = stale.count()
            stale.delete()
        self.stdout.write(
            f"beat schedule synced: {len(SCHEDULE)} jobs, {created} created, "
            f"{updated} updated, {removed} removed"
        )
