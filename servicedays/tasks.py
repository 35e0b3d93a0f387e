"""Celery entry points of the scheduled jobs (chefops.schedule); the work lives in jobs.py."""

from __future__ import annotations

from celery import shared_task

from chefops.jobs import record_job_success
from servicedays import jobs


@shared_task(name="servicedays.generate_upcoming", ignore_result=True)
def generate_upcoming(days: int = jobs.DEFAULT_GENERATION_DAYS) -> str:
    line = jobs.service_days_generate_upcoming(days=days).line()
    record_job_success("generate_service_days")
    return line


@shared_task(name="servicedays.apply_fallback", ignore_result=True)
def apply_fallback() -> str:
    line = jobs.service_days_apply_fallback().line()
    record_job_success("apply_fallback")
    return line
