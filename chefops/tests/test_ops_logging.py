"""Log sampling: every WARNING+ kept, a configured share of INFO, DEBUG off in production."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from chefops.logging import SamplingFilter

ROOT = Path(__file__).resolve().parents[2]


def _record(level: int, name: str = "chefops.test", **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, "message", None, None)
    record.__dict__.update(extra)
    return record


def _kept(sampler: SamplingFilter, level: int, count: int, name: str = "chefops.test") -> int:
    return sum(bool(sampler.filter(_record(level, name))) for _ in range(count))


def test_every_warning_and_above_is_kept_and_about_the_configured_share_of_info() -> None:
    sampler = SamplingFilter(info_rate=0.1, drop_debug=True, rng=random.Random(20260301))
    for level in (logging.WARNING, logging.ERROR, logging.CRITICAL):
        assert _kept(sampler, level, 2000) == 2000
    kept = _kept(sampler, logging.INFO, 20000)
    # Binomial(20000, 0.1): mean 2000, sd 42; 5 sd either side.
    assert 1790 <= kept <= 2210
    assert _kept(sampler, logging.DEBUG, 1000) == 0


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 1.0])
def test_info_share_follows_the_rate(rate: float) -> None:
    sampler = SamplingFilter(info_rate=rate, rng=random.Random(7))
    kept = _kept(sampler, logging.INFO, 10000)
    assert abs(kept - rate * 10000) <= 250  # > 5 sd for every rate here
    assert _kept(sampler, logging.WARNING, 100) == 100


def test_debug_is_kept_outside_production() -> None:
    sampler = SamplingFilter(info_rate=0.0, drop_debug=False)
    assert _kept(sampler, logging.DEBUG, 100) == 100


def test_audit_records_are_never_sampled_away() -> None:
    sampler = SamplingFilter(info_rate=0.0, drop_debug=True)
    assert _kept(sampler, logging.INFO, 100, name="outbox.audit") == 100
    assert _kept(sampler, logging.INFO, 100, name="audit") == 100
    assert sampler.filter(_record(logging.INFO, log_always=True))
    assert not sampler.filter(_record(logging.INFO, name="outbox.auditing"))


def test_rate_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        SamplingFilter(info_rate=1.5)


def test_settings_wire_the_sampler_into_the_console_handler() -> None:
    assert settings.LOG_INFO_SAMPLE_RATE == 1.0  # test profile: keep everything
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    samplers = [f for f in handler.filters if isinstance(f, SamplingFilter)]
    assert len(samplers) == 1
    assert samplers[0].info_rate == 1.0 and samplers[0].drop_debug is False


PROBE = (
    "import django, logging; django.setup(); from chefops.logging import SamplingFilter; "
    "h = next(h for h in logging.getLogger().handlers if h.get_name() == 'console'); "
    "f = next(f for f in h.filters if isinstance(f, SamplingFilter)); "
    "print(f.info_rate, f.drop_debug)"
)


def _probe(overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "LOG_INFO_SAMPLE_RATE", "METRICS_PUBLIC"}
    }
    env.update(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": "k" * 20 + "Zq8!" * 10,
            "DATABASE_URL": "postgres://x@127.0.0.1/x",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "ALLOWED_HOSTS": "chefops.example.com",
            "METRICS_TOKEN": "scrape-token-for-tests",
            "NUM_PROXIES": "1",
            "ALLOW_LOCAL_ARCHIVES": "true",
            **overrides,
        }
    )
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_samples_info_at_10_percent_and_drops_debug() -> None:
    result = _probe({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0.1", "True"]
    result = _probe({"LOG_INFO_SAMPLE_RATE": "0.5"})
    assert result.stdout.split() == ["0.5", "True"]
    result = _probe({"DJANGO_ENV": "staging"})
    assert result.stdout.split() == ["0.1", "False"]
    result = _probe({"LOG_INFO_SAMPLE_RATE": "2"})
    assert result.returncode != 0
    assert "LOG_INFO_SAMPLE_RATE must be between 0 and 1" in result.stderr
