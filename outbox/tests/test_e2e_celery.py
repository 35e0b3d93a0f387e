"""End to end: an event committed here travels as a nudge through the real Redis broker to a
separately started Celery worker, which dispatches it from the database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction

from chefops.celery import app
from outbox.models import EventStatus, OutboxEvent
from outbox.services import outbox_event_emit
from outbox.tests.support import subprocess_env, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_committed_event_is_handled_by_a_real_worker(tmp_path: Path) -> None:
    env = {**subprocess_env(), "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "INFO"}
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "chefops",
                "worker",
                "--pool=solo",
                "-Q",
                "celery",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with transaction.atomic():
            event = outbox_event_emit(
                event_type="test.e2e",
                aggregate_type="Contract",
                aggregate_id="e2e-1",
                payload={"hello": "worker"},
            )
        # No beat runs here: only the after-commit nudge can have started the dispatch.
        wait_until(
            lambda: OutboxEvent.objects.get(pk=event.pk).status == EventStatus.PROCESSED,
            timeout=60,
            what="the worker to process the event",
        )
    finally:
        app.conf.task_always_eager = previous
        worker.terminate()
        worker.wait(timeout=30)
    # The audit handler ran in the worker process.
    assert f"event test.e2e Contract:e2e-1 {event.id}" in log_path.read_text()
