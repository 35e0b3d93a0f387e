"""Two real beats by mistake, one real worker: the hourly fallback, ticked every second by both
beats, applies the contract minimum once and emits one event per contract; every other copy
skips (README "Scaling", chefops/ops/joblocks.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from outbox.models import OutboxEvent
from outbox.tests.support import subprocess_env, wait_until
from servicedays.models import ServiceDay
from servicedays.tests.helpers import make_contract, make_day

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"Task servicedays\.apply_fallback\[[^\]]+\] succeeded in [^:]+: '([^']*)'")


@contextmanager
def _process(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[Path]:
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chefops", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_beats_ticking_the_fallback_apply_it_once(cast: Any, tmp_path: Path) -> None:
    contracts = [
        make_contract(cast, min_daily_quantity=12),
        make_contract(cast, client_company=cast.other_client.company, min_daily_quantity=7),
    ]
    yesterday = timezone.now().date() - timedelta(days=1)
    for contract in contracts:
        make_day(contract, yesterday)
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name="two beats: fallback", task="servicedays.apply_fallback", interval=every_second
    )
    env = {**subprocess_env(), "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "INFO"}
    worker_args = [
        "worker",
        "--pool=threads",
        "--concurrency=2",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]

    def beat(n: int) -> list[str]:
        return [
            "beat",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            f"--schedule={tmp_path / f'beat-{n}.db'}",
            f"--pidfile={tmp_path / f'beat-{n}.pid'}",
            "--max-interval=1",
        ]

    def results(log: Path) -> list[str]:
        return RESULT.findall(log.read_text(errors="replace"))

    with (
        _process(worker_args, env, tmp_path / "worker.log") as worker_log,
        _process(beat(1), env, tmp_path / "beat-1.log") as beat_1,
        _process(beat(2), env, tmp_path / "beat-2.log") as beat_2,
    ):
        # Both beats sent the task, and the worker ran it several times.
        wait_until(
            lambda: (
                all("servicedays.apply_fallback" in b.read_text() for b in (beat_1, beat_2))
                and len(results(worker_log)) >= 6
            ),
            timeout=240,
            what="both beats to send the fallback and the worker to run it six times",
        )
    lines = results(worker_log)
    did_work = [line for line in lines if not line.startswith("apply_fallback: skipped")]
    # One run applied the minimum to the two days; at an hour boundary a later run may claim
    # the next hour, and finds nothing left to apply.
    assert [line for line in did_work if " to 0 service days" not in line] == [
        next(line for line in did_work if "to 2 service days of 2 contracts" in line)
    ], lines
    assert len(lines) - len(did_work) >= 4, lines
    events = OutboxEvent.objects.filter(event_type="servicedays.fallback_applied")
    assert sorted(events.values_list("aggregate_id", flat=True)) == sorted(
        str(c.pk) for c in contracts
    )
    quantities = ServiceDay.objects.values_list("expected_quantity", flat=True)
    assert sorted(q or 0 for q in quantities) == [7, 12]
