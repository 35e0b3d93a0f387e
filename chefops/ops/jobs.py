"""When each scheduled job last succeeded: written by the jobs, read by /metrics and operators.

The timestamp goes to the cache (Redis in production, so every web process sees what a Celery
worker wrote) and to a small file under RUN_DIR (so a single-machine setup without Redis, whose
cache is per process, still sees it). Readers take the newer of the two. No database: a scrape
must not depend on the job tables, and the outbox dispatcher records a success every 5 s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

# Job name -> period in seconds (SPEC §4). Alert rules and check_alerts call a job stale when
# it has not succeeded for twice its period.
JOB_PERIODS: dict[str, int] = {
    "outbox_dispatch": 5,
    "generate_service_days": 24 * 3600,
    "apply_fallback": 3600,
    "retention_purge": 24 * 3600,
}
_CACHE_KEY = "jobs:last-success:{job}"


@dataclass(frozen=True)
class JobStatus:
    job: str
    period_seconds: int
    last_success: datetime | None
    age_seconds: float | None

    @property
    def stale(self) -> bool:
        return self.age_seconds is not None and self.age_seconds > 2 * self.period_seconds


def _check_job(job: str) -> None:
    if job not in JOB_PERIODS:
        raise ValueError(f"unknown scheduled job {job!r}; known: {', '.join(sorted(JOB_PERIODS))}")


def _state_file(job: str) -> Path:
    return Path(settings.RUN_DIR) / "jobs" / f"{job}.last-success"


def record_job_success(job: str) -> None:
    """Call at the end of a successful run of a scheduled job (task or command)."""
    _check_job(job)
    stamp = timezone.now().timestamp()
    try:
        cache.set(_CACHE_KEY.format(job=job), stamp, timeout=None)
    except Exception as exc:  # noqa: BLE001 - the job succeeded; a cache outage must not undo it
        logger.warning("jobs: could not record %s success in the cache: %s", job, exc)
    path = _state_file(job)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a concurrent reader never sees a half-written number.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{job}.")
        with os.fdopen(fd, "w") as handle:
            handle.write(repr(stamp))
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("jobs: could not record %s success in %s: %s", job, path, exc)


def job_last_success(job: str) -> datetime | None:
    _check_job(job)
    stamps: list[float] = []
    try:
        cached = cache.get(_CACHE_KEY.format(job=job))
    except Exception as exc:  # noqa: BLE001 - fall back to the file when the cache is down
        logger.warning("jobs: cache unreadable for %s: %s", job, exc)
        cached = None
    if isinstance(cached, (int, float)):
        stamps.append(float(cached))
    with contextlib.suppress(OSError, ValueError):  # no file yet, or a foreign one
        stamps.append(float(_state_file(job).read_text().strip()))
    return datetime.fromtimestamp(max(stamps), tz=UTC) if stamps else None


def job_statuses() -> list[JobStatus]:
    now = timezone.now()
    result = []
    for job, period in JOB_PERIODS.items():
        last = job_last_success(job)
        age = max(0.0, (now - last).total_seconds()) if last else None
        result.append(JobStatus(job, period, last, age))
    return result
