"""The alert rules judged without Prometheus: `manage.py check_alerts`, the admin operations
page and the post-deploy check say what Prometheus would.

The thresholds have one source, deploy/prometheus/alerts.yml (the rules Prometheus loads; the
image keeps the file, see .dockerignore): `thresholds()` reads each rule's comparison from
it. Only the scheduled jobs' periods live in Python (chefops/ops/jobs.py); a test keeps the
stale-job rules at twice those periods.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import DatabaseError, transaction

from chefops.ops.jobs import job_statuses
from chefops.ops.reports import database_size_bytes, disk_usage, human_bytes, outbox_health

RULES_FILE = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"

# --- Thresholds, read from the alert rules -------------------------------------------------
# Alert name -> the comparison its expression ends with (e.g. "... > 0.01").
RULE_COMPARISONS = {
    "ChefOpsHigh5xxRate": ">",
    "ChefOpsHighLatencyP95": ">",
    "ChefOpsDatabaseSizeNearQuota": ">",
    "ChefOpsDiskSpaceLow": "<",
    "ChefOpsOutboxBacklogStuck": ">",
    "ChefOpsOutboxDeadEvents": ">",
}
_COMPARISON = re.compile(r"([<>])\s*([0-9]+(?:\.[0-9]+)?)\s*$")


class AlertRulesError(RuntimeError):
    """deploy/prometheus/alerts.yml lacks a rule, or a rule's expression has no threshold."""


@dataclass(frozen=True)
class Thresholds:
    http_5xx_ratio_max: float
    http_p95_seconds_max: float
    db_size_quota_ratio_max: float
    disk_free_ratio_min: float
    outbox_oldest_pending_seconds_max: float
    outbox_dead_max: float


def rule_threshold(expr: str) -> tuple[str, float]:
    """The comparison an alert expression ends with: ("<" or ">", the number)."""
    match = _COMPARISON.search(expr.strip())
    if not match:
        raise AlertRulesError(f"no trailing '< number' or '> number' in {expr!r}")
    return match.group(1), float(match.group(2))


def load_thresholds(path: Path) -> Thresholds:
    groups = yaml.safe_load(path.read_text())["groups"]
    exprs: dict[str, str] = {}
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                exprs.setdefault(str(rule["alert"]), str(rule["expr"]))
    values: dict[str, float] = {}
    for name, expected in RULE_COMPARISONS.items():
        if name not in exprs:
            raise AlertRulesError(f"{path}: no alert rule {name}")
        comparison, value = rule_threshold(exprs[name])
        if comparison != expected:
            raise AlertRulesError(f"{path}: {name} compares with {comparison}, not {expected}")
        values[name] = value
    return Thresholds(
        http_5xx_ratio_max=values["ChefOpsHigh5xxRate"],
        http_p95_seconds_max=values["ChefOpsHighLatencyP95"],
        db_size_quota_ratio_max=values["ChefOpsDatabaseSizeNearQuota"],
        disk_free_ratio_min=values["ChefOpsDiskSpaceLow"],
        outbox_oldest_pending_seconds_max=values["ChefOpsOutboxBacklogStuck"],
        outbox_dead_max=values["ChefOpsOutboxDeadEvents"],
    )


@functools.cache
def thresholds() -> Thresholds:
    """The thresholds of deploy/prometheus/alerts.yml (read once per process)."""
    return load_thresholds(RULES_FILE)


# --- Metric names (exposed by chefops/ops/metrics.py, read back here) -----------------------------
REQUESTS_TOTAL = "chefops_http_requests_total"
LATENCY_BUCKET = "chefops_http_request_duration_seconds_bucket"
# Probes are not user traffic: the post-deploy check leaves them out of its error/latency gate.
PROBE_ROUTES = frozenset({"api/health", "api/health/ready", "metrics"})


# --- HTTP figures from Prometheus samples --------------------------------------------------
@dataclass(frozen=True)
class HttpStats:
    requests: float
    errors_5xx: float
    p95_seconds: float | None

    @property
    def error_ratio(self) -> float:
        return self.errors_5xx / self.requests if self.requests else 0.0


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's histogram_quantile over cumulative bucket counts {le: count}."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                # Like Prometheus: the answer is the highest finite bucket bound.
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def http_stats(families: Iterable[Any], exclude_routes: frozenset[str] = frozenset()) -> HttpStats:
    """Totals over every label set (and every worker): request count, 5xx count, p95."""
    requests = errors = 0.0
    buckets: dict[float, float] = defaultdict(float)
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("route") in exclude_routes:
                continue
            if sample.name == REQUESTS_TOTAL:
                requests += sample.value
                if labels.get("status") == "5xx":
                    errors += sample.value
            elif sample.name == LATENCY_BUCKET:
                buckets[float(labels["le"])] += sample.value
    return HttpStats(requests, errors, histogram_quantile(0.95, buckets))


def local_http_families() -> list[Any]:
    """This deployment's HTTP metrics without a scrape: the gunicorn workers' multiprocess files
    when PROMETHEUS_MULTIPROC_DIR points at them, else this process's own registry."""
    from prometheus_client import REGISTRY
    from prometheus_client.multiprocess import MultiProcessCollector

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if path and Path(path).is_dir():
        return list(MultiProcessCollector(None, path=path).collect())
    return list(REGISTRY.collect())


# --- Alerts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertCheck:
    name: str
    firing: bool | None  # None: no data to judge
    value: str
    threshold: str

    @property
    def state(self) -> str:
        return {True: "FIRING", False: "ok", None: "no data"}[self.firing]


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.2f}%"


def evaluate_alerts(http: HttpStats | None = None) -> list[AlertCheck]:
    """The alert rules of deploy/prometheus/alerts.yml, judged from live figures.

    HTTP figures are cumulative since the web server started (Prometheus uses a 5-minute
    window); pass `http` to judge figures read elsewhere (e.g. a scraped /metrics).
    """
    limits = thresholds()
    checks: list[AlertCheck] = []
    if http is None:
        http = http_stats(local_http_families())
    if http.requests:
        checks.append(
            AlertCheck(
                "http_5xx_ratio",
                http.error_ratio > limits.http_5xx_ratio_max,
                f"{_pct(http.error_ratio)} of {int(http.requests)} requests",
                f"> {_pct(limits.http_5xx_ratio_max)}",
            )
        )
    else:
        checks.append(
            AlertCheck(
                "http_5xx_ratio", None, "no requests", f"> {_pct(limits.http_5xx_ratio_max)}"
            )
        )
    p95 = http.p95_seconds
    checks.append(
        AlertCheck(
            "http_p95_latency",
            None if p95 is None else p95 > limits.http_p95_seconds_max,
            "no requests" if p95 is None else f"{p95:.3f}s",
            f"> {limits.http_p95_seconds_max:g}s",
        )
    )
    quota = settings.DB_SIZE_QUOTA_BYTES
    try:
        # Savepoints: a failing read must not break the caller's transaction (admin page).
        with transaction.atomic():
            size = database_size_bytes()
        ratio = size / quota if quota else 0.0
        checks.append(
            AlertCheck(
                "database_size",
                ratio > limits.db_size_quota_ratio_max,
                f"{human_bytes(size)} = {_pct(ratio)} of {human_bytes(quota)}",
                f"> {_pct(limits.db_size_quota_ratio_max)} of quota",
            )
        )
    except DatabaseError as exc:
        checks.append(
            AlertCheck(
                "database_size",
                None,
                f"database error: {_first_line(exc)}",
                f"> {_pct(limits.db_size_quota_ratio_max)} of quota",
            )
        )
    try:
        disk = disk_usage()
    except (OSError, DatabaseError) as exc:
        checks.append(
            AlertCheck(
                "disk_free",
                None,
                f"unreadable: {_first_line(exc)}",
                f"< {_pct(limits.disk_free_ratio_min)}",
            )
        )
    else:
        checks.append(
            AlertCheck(
                "disk_free",
                disk.free_ratio < limits.disk_free_ratio_min,
                f"{human_bytes(disk.free)} free = {_pct(disk.free_ratio)} of {disk.path}",
                f"< {_pct(limits.disk_free_ratio_min)}",
            )
        )
    try:
        with transaction.atomic():
            outbox = outbox_health()
        checks.append(
            AlertCheck(
                "outbox_oldest_pending",
                outbox.oldest_pending_age_seconds > limits.outbox_oldest_pending_seconds_max,
                f"{outbox.oldest_pending_age_seconds:.0f}s ({outbox.backlog} undelivered)",
                f"> {limits.outbox_oldest_pending_seconds_max:.0f}s",
            )
        )
        checks.append(
            AlertCheck(
                "outbox_dead_events",
                outbox.dead > limits.outbox_dead_max,
                str(outbox.dead),
                f"> {limits.outbox_dead_max:g}",
            )
        )
    except DatabaseError as exc:
        error = f"database error: {_first_line(exc)}"
        checks.append(
            AlertCheck(
                "outbox_oldest_pending",
                None,
                error,
                f"> {limits.outbox_oldest_pending_seconds_max:.0f}s",
            )
        )
        checks.append(
            AlertCheck("outbox_dead_events", None, error, f"> {limits.outbox_dead_max:g}")
        )
    for job in job_statuses():
        checks.append(
            AlertCheck(
                f"job_stale:{job.job}",
                None if job.age_seconds is None else job.stale,
                "never recorded"
                if job.age_seconds is None
                else f"last success {job.age_seconds:.0f}s ago",
                f"> {2 * job.period_seconds}s (2 x {job.period_seconds}s)",
            )
        )
    return checks
