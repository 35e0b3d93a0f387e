"""Webhook metrics: attempts and their latency (recorded by the process that sends them) and
the backlog and disabled endpoints (computed at scrape time, see chefops/ops/metrics.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from django.db import DatabaseError
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# result: succeeded (2xx), retry (failed, another attempt scheduled), gave_up (the last
# attempt failed), refused (the target resolved to a forbidden address).
DELIVERIES = Counter(
    "chefops_webhook_deliveries_total",
    "Webhook delivery attempts by result (succeeded, retry, gave_up, refused).",
    ["result"],
)
# Labelled like every metric of the project: a metric without labels creates its value (a
# file, in multiprocess mode) at import time, before gunicorn has made the directory.
LATENCY = Histogram(
    "chefops_webhook_delivery_duration_seconds",
    "Time from sending a webhook to having read (the start of) its answer, by status class.",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class WebhooksCollector(Collector):
    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from webhooks.selectors import webhook_backlog

        try:
            due, oldest_age, disabled = webhook_backlog()
        except DatabaseError as exc:
            logger.warning("metrics: webhook figures unavailable: %s", exc)
            return
        yield GaugeMetricFamily(
            "chefops_webhook_backlog_deliveries",
            "Webhook deliveries due and not sent yet (PENDING, next attempt in the past).",
            value=due,
        )
        yield GaugeMetricFamily(
            "chefops_webhook_oldest_due_age_seconds",
            "How long the oldest due webhook delivery has waited for a worker (0 when none).",
            value=oldest_age,
        )
        yield GaugeMetricFamily(
            "chefops_webhook_endpoints_disabled",
            "Webhook endpoints disabled after repeated failed deliveries.",
            value=disabled,
        )
