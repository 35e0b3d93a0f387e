from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chefops.ops import alerts


class Command(BaseCommand):
    help = (
        "Evaluate the alert rules of deploy/prometheus/alerts.yml without Prometheus: HTTP 5xx "
        "share and p95 (from a running server's /metrics with --url, else the gunicorn "
        "multiprocess files in PROMETHEUS_MULTIPROC_DIR), database size against the quota, free "
        "disk, outbox backlog age and DEAD events, stale scheduled jobs. One line per check; "
        "exits 1 when any alert fires."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", help="Base URL of a running server whose /metrics gives the HTTP figures"
        )
        parser.add_argument(
            "--token", help="Bearer token for /metrics (default: METRICS_TOKEN)", default=None
        )
        parser.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout (s)")

    def handle(self, *args: Any, **options: Any) -> None:
        http = None
        if options["url"]:
            from chefops.management.commands.postdeploy_check import fetch_metrics

            http = alerts.http_stats(
                fetch_metrics(options["url"], options["token"], options["timeout"])
            )
        checks = alerts.evaluate_alerts(http)
        width = max(len(c.name) for c in checks)
        for check in checks:
            self.stdout.write(
                f"{check.state:<8} {check.name:<{width}}  {check.value}  (fires {check.threshold})"
            )
        firing = [c.name for c in checks if c.firing]
        if firing:
            self.stdout.write(
                f"check_alerts: {len(firing)} of {len(checks)} alerts firing: {', '.join(firing)}"
            )
            sys.exit(1)
        self.stdout.write(f"check_alerts: none of {len(checks)} alerts firing")
