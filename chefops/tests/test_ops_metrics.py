"""/metrics: request metrics by route template and status class, scrape-time gauges, auth."""

from __future__ import annotations

import runpy
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client
from django.urls import path
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from chefops.ops import reports
from chefops.ops.jobs import record_job_success
from chefops.urls import urlpatterns as project_urlpatterns
from outbox.models import EventStatus, OutboxEvent

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _thing(request: HttpRequest, thing_id: str) -> JsonResponse:
    return JsonResponse({"id": thing_id})


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


# This module doubles as the URLconf of the route-label tests (pytest.mark.urls).
urlpatterns = [
    path("api/things/<str:thing_id>", _thing),
    path("api/boom", _boom),
    *project_urlpatterns,
]
URLCONF = pytest.mark.urls("chefops.tests.test_ops_metrics")


@pytest.fixture(autouse=True)
def _single_process_metrics(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings.METRICS_TOKEN = ""
    settings.RUN_DIR = tmp_path / "run"


def _requests(route: str, status: str, method: str = "GET") -> float:
    value = REGISTRY.get_sample_value(
        "chefops_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def _latency_count(route: str, method: str = "GET") -> float:
    value = REGISTRY.get_sample_value(
        "chefops_http_request_duration_seconds_count", {"method": method, "route": route}
    )
    return value or 0.0


def _scrape(client: Client | None = None, auth: str | None = None) -> dict[str, list[Any]]:
    headers = {"Authorization": auth} if auth else {}
    res = (client or Client()).get("/metrics", headers=headers)
    assert res.status_code == 200, res.content
    assert res["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(res.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _value(samples: dict[str, list[Any]], name: str, **labels: str) -> float | None:
    for sample in samples.get(name, []):
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    return None


@URLCONF
@pytest.mark.django_db
def test_requests_are_counted_by_route_template_never_the_raw_path() -> None:
    route = "api/things/<str:thing_id>"
    before, latency_before = _requests(route, "2xx"), _latency_count(route)
    client = Client()
    assert client.get("/api/things/a1").status_code == 200
    assert client.get("/api/things/b2").status_code == 200
    assert _requests(route, "2xx") == before + 2
    assert _latency_count(route) == latency_before + 2

    samples = _scrape()
    routes = {s.labels["route"] for s in samples["chefops_http_requests_total"]}
    assert route in routes
    assert not any("a1" in r or "b2" in r for r in routes)


@URLCONF
@pytest.mark.django_db
def test_unknown_routes_are_unmatched_and_errors_are_classed() -> None:
    unmatched, errors = _requests("unmatched", "4xx"), _requests("api/boom", "5xx")
    posted = _requests("unmatched", "4xx", method="POST")
    client = Client(raise_request_exception=False)
    assert client.get("/api/no/such/thing").status_code == 404
    assert client.get("/not-an-api-path").status_code == 404
    assert client.post("/api/nowhere", {}).status_code == 404
    assert client.get("/api/boom").status_code == 500
    assert _requests("unmatched", "4xx") == unmatched + 2
    assert _requests("unmatched", "4xx", method="POST") == posted + 1
    assert _requests("api/boom", "5xx") == errors + 1


@pytest.mark.django_db
def test_latency_histogram_has_buckets_for_a_50ms_to_1s_api() -> None:
    Client().get("/api/health")
    samples = _scrape()
    bounds = {
        s.labels["le"]
        for s in samples["chefops_http_request_duration_seconds_bucket"]
        if s.labels["route"] == "api/health"
    }
    assert {"0.025", "0.05", "0.075", "0.1", "0.2", "0.5", "0.75", "1.0", "2.5", "+Inf"} <= bounds
    count = _value(samples, "chefops_http_request_duration_seconds_count", route="api/health")
    inf = _value(
        samples, "chefops_http_request_duration_seconds_bucket", route="api/health", le="+Inf"
    )
    assert count and count == inf


@pytest.mark.django_db
def test_metrics_token_is_required_when_set(settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-me-42"
    client = Client()
    res = client.get("/metrics")
    assert res.status_code == 401
    assert res["WWW-Authenticate"].startswith("Bearer")
    assert b"chefops_" not in res.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="scrape-me-42").status_code == 401
    samples = _scrape(client, auth="Bearer scrape-me-42")
    assert "chefops_database_size_bytes" in samples


@pytest.mark.django_db
def test_metrics_needs_no_token_when_unset_and_only_allows_get() -> None:
    assert Client().get("/metrics").status_code == 200
    assert Client().post("/metrics").status_code == 405


@pytest.mark.django_db
def test_metrics_answers_a_scrape_by_address(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["chefops.example.com"]
    assert Client().get("/metrics", HTTP_HOST="10.0.3.7:8000").status_code == 200
    assert Client().get("/admin/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400


@pytest.mark.django_db
def test_outbox_gauges_count_backlog_dead_and_the_oldest_undelivered_age() -> None:
    with time_machine.travel(NOW, tick=False):
        for created, status in [
            (NOW - timedelta(minutes=10), EventStatus.PENDING),
            (NOW - timedelta(minutes=1), EventStatus.PENDING),
            (NOW - timedelta(days=3), EventStatus.DEAD),
            (NOW - timedelta(days=9), EventStatus.PROCESSED),
            (NOW - timedelta(minutes=5), EventStatus.PROCESSING),
        ]:
            OutboxEvent.objects.create(
                event_type="contract.created",
                aggregate_type="contract",
                aggregate_id="c1",
                status=status,
                created_at=created,
            )
        samples = _scrape()
    assert _value(samples, "chefops_outbox_backlog_events") == 3  # PENDING + PROCESSING
    assert _value(samples, "chefops_outbox_dead_events") == 1
    assert _value(samples, "chefops_outbox_oldest_pending_age_seconds") == 600


@pytest.mark.django_db
def test_empty_outbox_reports_zero_age() -> None:
    samples = _scrape()
    assert _value(samples, "chefops_outbox_backlog_events") == 0
    assert _value(samples, "chefops_outbox_oldest_pending_age_seconds") == 0
    assert _value(samples, "chefops_outbox_dead_events") == 0


@pytest.mark.django_db
def test_database_size_quota_and_disk_gauges(settings: Any, tmp_path: Path) -> None:
    settings.DB_SIZE_QUOTA_BYTES = 5 * 1024**3
    settings.DISK_USAGE_PATH = str(tmp_path)
    samples = _scrape()
    size = _value(samples, "chefops_database_size_bytes")
    assert size is not None and size > 0
    assert size == pytest.approx(reports.database_size_bytes(), rel=0.05)
    assert _value(samples, "chefops_database_size_quota_bytes") == 5 * 1024**3
    assert _value(samples, "chefops_database_up") == 1
    disk = shutil.disk_usage(tmp_path)
    assert _value(samples, "chefops_disk_total_bytes") == disk.total
    free = _value(samples, "chefops_disk_free_bytes")
    assert free is not None and 0 < free <= disk.total
    assert free == pytest.approx(disk.free, rel=0.01)


@pytest.mark.django_db
def test_job_last_success_timestamps_are_exposed_once_recorded() -> None:
    with time_machine.travel(NOW, tick=False):
        record_job_success("apply_fallback")
    samples = _scrape()
    stamp = _value(
        samples, "chefops_job_last_success_timestamp_seconds", scheduled_job="apply_fallback"
    )
    assert stamp == NOW.timestamp()
    jobs = {
        s.labels["scheduled_job"] for s in samples["chefops_job_last_success_timestamp_seconds"]
    }
    assert jobs == {"apply_fallback"}  # never-run jobs are absent, not 0


def _write(path: Path, values: dict[str, float]) -> None:
    db = MmapedDict(str(path))
    for key, value in values.items():
        db.write_value(key, value, 0.0)
    db.close()


def _collected(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


def test_gunicorn_folds_a_dead_workers_files_into_an_archive_without_losing_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_requests recycling must neither lose counts nor pile up one file per dead worker."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    counter = mmap_key(
        "chefops_http_requests",
        "chefops_http_requests_total",
        ["method", "route", "status"],
        ["GET", "api/health", "2xx"],
        "HTTP requests",
    )
    bucket = mmap_key(
        "chefops_http_request_duration_seconds",
        "chefops_http_request_duration_seconds_bucket",
        ["method", "route", "le"],
        ["GET", "api/health", "0.05"],
        "latency",
    )
    _write(tmp_path / "counter_101.db", {counter: 3})
    _write(tmp_path / "counter_202.db", {counter: 4})
    _write(tmp_path / "histogram_101.db", {bucket: 3})
    before = _collected(tmp_path)
    total = (
        "chefops_http_requests_total",
        (("method", "GET"), ("route", "api/health"), ("status", "2xx")),
    )
    assert before[total] == 7

    conf["merge_dead_worker_metrics"](101, str(tmp_path))
    conf["merge_dead_worker_metrics"](202, str(tmp_path))
    conf["merge_dead_worker_metrics"](303, str(tmp_path))  # no files: nothing to do
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    assert _collected(tmp_path) == before

    # A new worker that happens to get a recycled pid starts from zero; the sum keeps growing.
    _write(tmp_path / "counter_101.db", {counter: 1})
    assert _collected(tmp_path)[total] == 8
