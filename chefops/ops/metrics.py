"""Prometheus metrics at GET /metrics.

Request metrics are recorded by `PrometheusMiddleware` into prometheus-client's registry. Under
gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) makes every worker write its
values to mmap files in that directory and a scrape, whichever worker answers it, sums the
files of all workers (multiprocess mode). Without it (runserver, tests) the process's own
registry is used.

Everything else (outbox backlog, database size, disk, job timestamps) is computed at scrape
time by `OperationsCollector`, so it is the same whichever worker answers and costs nothing
between scrapes.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from chefops.api.errors import api_not_found
from chefops.ops import alerts, reports
from webhooks.metrics import WebhooksCollector

logger = logging.getLogger(__name__)

# `*_created` series double the series count and no rule or dashboard here uses them.
disable_created_metrics()

UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The API aims at 50 ms and must stay under 1 s: fine steps in that range, coarse ones around it.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
)  # fmt: skip

HTTP_REQUESTS = Counter(
    alerts.REQUESTS_TOTAL,
    "HTTP requests by method, route template and status class.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "chefops_http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
READ_CACHE = Counter(
    "chefops_read_cache_lookups_total",
    "Lookups of the per-tenant read cache (chefops/readcache.py): hit, miss or error; "
    "waited: misses answered by a concurrent request's fill.",
    ["result"],
)


def route_template(request: HttpRequest) -> str:
    """The URL pattern that served the request (bounded label values), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.func is api_not_found or not match.route:
        return UNMATCHED_ROUTE
    return str(match.route)


class PrometheusMiddleware:
    """Counts and times every request. First in MIDDLEWARE so nothing escapes it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/metrics":
            # Prometheus scrapes each container by address, not by the public host name.
            allowed = settings.ALLOWED_HOSTS
            if allowed and "*" not in allowed:
                request.META["HTTP_HOST"] = allowed[0].lstrip(".") or "localhost"
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        route = route_template(request)
        HTTP_REQUESTS.labels(method, route, f"{response.status_code // 100}xx").inc()
        HTTP_LATENCY.labels(method, route).observe(elapsed)
        return response


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class OperationsCollector(Collector):
    """Scrape-time gauges. A failing source drops its gauges instead of failing the scrape."""

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not run the queries

    def collect(self) -> Iterator[Metric]:
        from chefops.ops.jobs import job_statuses

        database_up = 1.0
        try:
            size = reports.database_size_bytes()
        except DatabaseError as exc:
            logger.warning("metrics: database unavailable during scrape: %s", exc)
            connection.close_if_unusable_or_obsolete()
            database_up = 0.0
        else:
            yield _gauge("chefops_database_size_bytes", "Size of the database.", size)
        try:
            outbox = reports.outbox_health() if database_up else None
        except DatabaseError as exc:
            logger.warning("metrics: outbox figures unavailable: %s", exc)
            outbox = None
        if outbox is not None:
            yield _gauge(
                "chefops_outbox_backlog_events",
                "Outbox events not delivered yet (PENDING + PROCESSING).",
                outbox.backlog,
            )
            yield _gauge(
                "chefops_outbox_oldest_pending_age_seconds",
                "Age of the oldest undelivered outbox event (0 when none).",
                outbox.oldest_pending_age_seconds,
            )
            yield _gauge(
                "chefops_outbox_dead_events", "Outbox events that gave up (DEAD).", outbox.dead
            )
        yield _gauge("chefops_database_up", "1 if the database answered this scrape.", database_up)
        yield _gauge(
            "chefops_database_size_quota_bytes",
            "DB_SIZE_QUOTA_BYTES: the size the database must stay under.",
            settings.DB_SIZE_QUOTA_BYTES,
        )
        try:
            disk = reports.disk_usage()
        except OSError as exc:
            logger.warning("metrics: disk usage unavailable: %s", exc)
        else:
            yield _gauge(
                "chefops_disk_free_bytes", "Free bytes on the data directory's disk.", disk.free
            )
            yield _gauge(
                "chefops_disk_total_bytes", "Size of the data directory's disk.", disk.total
            )
        jobs = GaugeMetricFamily(
            "chefops_job_last_success_timestamp_seconds",
            "Unix time a scheduled job last succeeded (absent until it has).",
            labels=["scheduled_job"],
        )
        for status in job_statuses():
            if status.last_success is not None:
                jobs.add_metric([status.job], status.last_success.timestamp())
        yield jobs


class _ProcessRegistry(Collector):
    """This process's own registry, for when there is no multiprocess directory."""

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessRegistry())
    registry.register(OperationsCollector())
    registry.register(WebhooksCollector())
    return registry


def generate_latest() -> bytes:
    return bytes(_generate_latest(metrics_registry()))


def _authorized(request: HttpRequest, token: str) -> bool:
    supplied = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(supplied, f"Bearer {token}".encode())


@never_cache
def metrics_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    token = settings.METRICS_TOKEN
    if token and not _authorized(request, token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
