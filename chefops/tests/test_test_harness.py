"""The test harness itself: a run owns its state, shares nothing it could flush, and stops at
once on a dead service (README "The two commands")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache

from chefops.ops.jobs import record_job_success
from chefops.testing.gunicorn import ROOT, free_port


def test_a_run_keeps_its_state_out_of_the_checkout() -> None:
    run_id = settings.TEST_RUN_ID
    assert run_id and os.environ["CHEFOPS_TEST_RUN_ID"] == run_id  # inherited by children
    state = settings.TEST_STATE_DIR
    assert state is not None and run_id in state.name
    assert not state.is_relative_to(settings.BASE_DIR)
    for folder in (settings.RUN_DIR, settings.ARCHIVE_DIR, settings.BACKUP_DIR):
        assert Path(folder).is_relative_to(state), folder
    record_job_success("apply_fallback")
    assert (Path(settings.RUN_DIR) / "jobs" / "apply_fallback.last-success").exists()
    assert not (settings.BASE_DIR / ".run" / "jobs" / "apply_fallback.last-success").exists()


@pytest.mark.postgres
def test_the_test_database_is_this_runs_own() -> None:
    assert settings.DATABASES["default"]["TEST"]["NAME"].endswith(f"_{settings.TEST_RUN_ID}")


@pytest.mark.redis
def test_redis_keys_carry_the_run_id_and_clear_spares_everyone_elses() -> None:
    import redis

    prefix = f"chefops-test-{settings.TEST_RUN_ID}"
    assert settings.CACHES["default"]["KEY_PREFIX"] == prefix
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] == f"{prefix}-celery:"
    raw = redis.Redis.from_url(settings.CACHE_URL)
    others = {
        "chefops-test-another-run:1:entry": b"theirs",
        "chefops:1:production-entry": b"theirs",
        "_kombu.binding.celery": b"theirs",
        f"{prefix}x:1:similar-prefix": b"theirs",  # a prefix that merely starts like ours
    }
    try:
        raw.mset(others)
        cache.set_many({"mine": 1, "also-mine": 2})
        assert raw.exists(f"{prefix}:1:mine")
        cache.clear()
        assert cache.get_many(["mine", "also-mine"]) == {}
        assert raw.mget(list(others)) == list(others.values())
    finally:
        raw.delete(*others)
        raw.close()


@pytest.mark.slow
def test_a_dead_database_or_redis_stops_the_run_at_once_naming_it() -> None:
    dead_db, dead_redis = free_port(), free_port()
    env: dict[str, Any] = {
        # a run of its own: it must not share (and on exit remove) this run's state
        **{k: v for k, v in os.environ.items() if k != "CHEFOPS_TEST_RUN_ID"},
        "DATABASE_URL": f"postgres://chef:s3cret-pw@127.0.0.1:{dead_db}/chefops",
        "REDIS_URL": f"redis://:r3dis-pw@127.0.0.1:{dead_redis}/4",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "chefops/tests/test_cast.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 4, output  # a usage error: nothing was collected or run
    assert f"DATABASE_URL postgres://chef@127.0.0.1:{dead_db}/chefops is unreachable" in output
    assert f"REDIS_URL redis://127.0.0.1:{dead_redis}/4 is unreachable" in output
    assert "s3cret-pw" not in output and "r3dis-pw" not in output
    assert output.startswith("ERROR: cannot run the tests:"), output
    assert len(output.strip().splitlines()) == 3  # the headline and one line per service
