"""manage.py dbreport and manage.py check_alerts."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from chefops.ops import alerts
from chefops.ops.jobs import record_job_success
from outbox.models import EventStatus, OutboxEvent

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def metrics_dir(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No HTTP figures unless a test writes them: an empty multiprocess directory."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    settings.RUN_DIR = tmp_path / "run"
    settings.DISK_USAGE_PATH = str(tmp_path)
    settings.DB_SIZE_QUOTA_BYTES = 1024**4
    return metrics_dir


def _disk_is_low() -> bool:
    usage = shutil.disk_usage(Path.cwd())
    return usage.free / usage.total < alerts.thresholds().disk_free_ratio_min


def _check_alerts(*args: str) -> tuple[int, dict[str, str], str]:
    out = StringIO()
    code = 0
    try:
        call_command("check_alerts", *args, stdout=out)
    except SystemExit as exc:
        code = int(exc.code or 0)
    text = out.getvalue()
    states = {}
    for line in text.splitlines()[:-1]:
        state, name = line[:8].strip(), line[9:].split()[0]
        states[name] = state
    return code, states, text


def _event(status: str, created: datetime) -> None:
    OutboxEvent.objects.create(
        event_type="contract.created",
        aggregate_type="contract",
        aggregate_id="c1",
        status=status,
        created_at=created,
    )


@pytest.mark.django_db
def test_check_alerts_is_quiet_on_a_healthy_system() -> None:
    with time_machine.travel(NOW, tick=False):
        for job in ("outbox_dispatch", "apply_fallback"):
            record_job_success(job)
        _event(EventStatus.PENDING, NOW - timedelta(seconds=30))
        code, states, text = _check_alerts()
    assert states["outbox_oldest_pending"] == "ok"
    assert states["outbox_dead_events"] == "ok"
    assert states["database_size"] == "ok"
    assert states["job_stale:outbox_dispatch"] == "ok"
    assert states["job_stale:retention_purge"] == "no data"
    assert states["http_5xx_ratio"] == "no data"
    assert states["http_p95_latency"] == "no data"
    if _disk_is_low():  # this machine's real disk decides that check
        assert code == 1 and states["disk_free"] == "FIRING"
    else:
        assert code == 0 and states["disk_free"] == "ok", text
        assert text.splitlines()[-1].startswith("check_alerts: none of ")


@pytest.mark.django_db
def test_check_alerts_fires_on_backlog_dead_events_stale_jobs_and_db_quota(settings: Any) -> None:
    settings.DB_SIZE_QUOTA_BYTES = 1000
    with time_machine.travel(NOW, tick=False):
        record_job_success("outbox_dispatch")
        _event(EventStatus.PENDING, NOW - timedelta(minutes=6))
        _event(EventStatus.DEAD, NOW - timedelta(days=1))
    with time_machine.travel(NOW + timedelta(seconds=11), tick=False):
        code, states, text = _check_alerts()
    assert code == 1
    for name in (
        "outbox_oldest_pending",
        "outbox_dead_events",
        "job_stale:outbox_dispatch",
        "database_size",
    ):
        assert states[name] == "FIRING", text
    last = text.splitlines()[-1]
    assert last.startswith("check_alerts: ") and "outbox_dead_events" in last


def _write_http_metrics(folder: Path, pid: int, counts: dict[str, float], slow: bool) -> None:
    counter = MmapedDict(str(folder / f"counter_{pid}.db"))
    for status, value in counts.items():
        key = mmap_key(
            "chefops_http_requests",
            "chefops_http_requests_total",
            ["method", "route", "status"],
            ["GET", "api/contracts", status],
            "HTTP requests",
        )
        counter.write_value(key, value, 0.0)
    counter.close()
    histogram = MmapedDict(str(folder / f"histogram_{pid}.db"))
    total = sum(counts.values())
    # Non-cumulative per-bucket counts, as prometheus-client stores them in multiprocess files.
    for le, share in (("0.1", 0.0 if slow else 1.0), ("2.5", 1.0 if slow else 0.0), ("+Inf", 0)):
        key = mmap_key(
            "chefops_http_request_duration_seconds",
            "chefops_http_request_duration_seconds_bucket",
            ["method", "route", "le"],
            ["GET", "api/contracts", le],
            "latency",
        )
        histogram.write_value(key, total * share, 0.0)
    histogram.close()


@pytest.mark.django_db
def test_check_alerts_reads_5xx_and_p95_summed_over_the_workers_files(
    metrics_dir: Path,
) -> None:
    _write_http_metrics(metrics_dir, 101, {"2xx": 990, "5xx": 3}, slow=False)
    _write_http_metrics(metrics_dir, 102, {"2xx": 4, "5xx": 3}, slow=False)
    code, states, text = _check_alerts()
    assert states["http_5xx_ratio"] == "ok", text  # 6 of 1000
    assert "0.60% of 1000 requests" in text
    assert states["http_p95_latency"] == "ok"

    _write_http_metrics(metrics_dir, 103, {"2xx": 900, "5xx": 100}, slow=True)
    code, states, text = _check_alerts()
    assert code == 1
    assert states["http_5xx_ratio"] == "FIRING"  # 106 of 2000
    assert states["http_p95_latency"] == "FIRING"  # half the requests took up to 2.5 s


def test_histogram_quantile_matches_promql() -> None:
    buckets = {0.5: 50.0, 1.0: 80.0, 2.5: 100.0, float("inf"): 100.0}
    assert alerts.histogram_quantile(0.95, buckets) == pytest.approx(2.125)
    assert alerts.histogram_quantile(0.5, buckets) == pytest.approx(0.5)
    assert alerts.histogram_quantile(0.95, {0.5: 10.0, float("inf"): 100.0}) == 0.5
    assert alerts.histogram_quantile(0.95, {0.5: 0.0, float("inf"): 0.0}) is None
    assert alerts.histogram_quantile(0.95, {}) is None


@pytest.mark.django_db
def test_dbreport_on_sqlite_says_so_and_prints_the_file_size(settings: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite behaviour (this run uses PostgreSQL)")
    out = StringIO()
    call_command("dbreport", stdout=out)
    text = out.getvalue()
    assert "note: this is SQLite, not PostgreSQL" in text
    assert "outbox_outboxevent" in text
    assert "database size" in text and "of DB_SIZE_QUOTA_BYTES 1.0 TiB" in text
    assert text.splitlines()[-1].startswith("dbreport: sqlite database")


@pytest.mark.postgres
@pytest.mark.django_db
def test_dbreport_on_postgres_lists_tables_indexes_connections_and_size(settings: Any) -> None:
    settings.DB_SIZE_QUOTA_BYTES = 1000  # any real database is over this
    _event(EventStatus.PENDING, NOW)
    out = StringIO()
    call_command("dbreport", "--limit", "100", stdout=out)
    text = out.getvalue()
    for heading in ("Slowest queries", "Tables", "Indexes", "Connections", "Size"):
        assert f"== {heading}" in text
    assert "outbox_outboxevent" in text
    assert "outbox_pending_due_idx" in text
    assert connection.settings_dict["NAME"] in text  # our own connection is listed
    assert "max_connections = " in text
    assert text.splitlines()[-1].endswith("size OVER the alert threshold")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        installed = cursor.fetchone() is not None
    if not installed:
        assert "pg_stat_statements is not installed in this database" in text
        assert "shared_preload_libraries" in text


@pytest.mark.postgres
@pytest.mark.django_db
def test_dbreport_explains_a_pg_stat_statements_that_is_not_preloaded() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'")
        if cursor.fetchone() is None:
            pytest.skip("pg_stat_statements is not available on this server")
        cursor.execute("SHOW shared_preload_libraries")
        preloaded = "pg_stat_statements" in cursor.fetchone()[0]
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")  # rolled back
    out = StringIO()
    call_command("dbreport", stdout=out)
    text = out.getvalue()
    if preloaded:
        assert "mean ms" in text
    else:
        assert "pg_stat_statements is installed but not readable" in text
        assert "shared_preload_libraries" in text
