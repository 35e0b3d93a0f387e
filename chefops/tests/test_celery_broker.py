"""A task really travels through Redis to a separately started Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from chefops.celery import app
from chefops.tasks import ping

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.redis
@pytest.mark.slow
def test_task_round_trip_through_real_redis_broker() -> None:
    env = {**os.environ, "DJANGO_ENV": "test", "CELERY_TASK_ALWAYS_EAGER": "false"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "chefops",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "-Q",
            "celery",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        assert settings.CELERY_BROKER_URL.startswith("redis://")
        result = ping.delay()
        assert result.get(timeout=60) == "pong"
    finally:
        app.conf.task_always_eager = previous
        worker.terminate()
        worker.wait(timeout=30)
