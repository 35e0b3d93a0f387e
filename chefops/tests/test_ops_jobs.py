"""record_job_success: shared through the cache, with a file fallback; staleness at 2 periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.cache import cache

from chefops.ops.jobs import JOB_PERIODS, job_last_success, job_statuses, record_job_success

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _run_dir(settings: Any, tmp_path: Path) -> None:
    settings.RUN_DIR = tmp_path


def test_the_periods_match_the_schedule() -> None:
    assert JOB_PERIODS == {
        "outbox_dispatch": 5,
        "generate_service_days": 86400,
        "apply_fallback": 3600,
        "retention_purge": 86400,
    }


def test_a_recorded_success_is_readable_from_the_cache_and_from_the_file(tmp_path: Path) -> None:
    assert job_last_success("apply_fallback") is None
    with time_machine.travel(NOW, tick=False):
        record_job_success("apply_fallback")
    assert job_last_success("apply_fallback") == NOW
    state = tmp_path / "jobs" / "apply_fallback.last-success"
    assert float(state.read_text()) == NOW.timestamp()

    cache.clear()  # another process's per-process cache: the file still tells
    assert job_last_success("apply_fallback") == NOW
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        record_job_success("apply_fallback")
    state.unlink()  # another machine's file system: the shared cache still tells
    assert job_last_success("apply_fallback") == NOW + timedelta(hours=1)


def test_unknown_job_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scheduled job 'outbox'"):
        record_job_success("outbox")


def test_a_job_is_stale_after_twice_its_period() -> None:
    with time_machine.travel(NOW, tick=False):
        record_job_success("outbox_dispatch")
        record_job_success("apply_fallback")
    with time_machine.travel(NOW + timedelta(seconds=10), tick=False):
        by_name = {s.job: s for s in job_statuses()}
        assert not by_name["outbox_dispatch"].stale
        assert by_name["outbox_dispatch"].age_seconds == 10
    with time_machine.travel(NOW + timedelta(seconds=11), tick=False):
        by_name = {s.job: s for s in job_statuses()}
        assert by_name["outbox_dispatch"].stale
        assert not by_name["apply_fallback"].stale
        assert by_name["retention_purge"].last_success is None
        assert not by_name["retention_purge"].stale  # never ran: no data, not stale
    with time_machine.travel(NOW + timedelta(hours=2, seconds=1), tick=False):
        assert {s.job: s for s in job_statuses()}["apply_fallback"].stale
