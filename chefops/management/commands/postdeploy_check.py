from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client.parser import text_string_to_metric_families

from chefops.ops import alerts

# The deployment checklist is stricter than the paging alert (1 %).
POSTDEPLOY_5XX_RATIO_MAX = 0.005
POSTDEPLOY_P95_SECONDS_MAX = 1.0


def _check_url(base: str) -> str:
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandError(
            f"--url must be an http(s) base URL like https://api.example.com, not {base!r}"
        )
    return base.rstrip("/")


def _get(url: str, timeout: float, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - http(s) checked
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def fetch_metrics(base: str, token: str | None, timeout: float) -> list[Any]:
    """The parsed /metrics of a running server (Bearer METRICS_TOKEN when one is set)."""
    url = _check_url(base) + "/metrics"
    token = settings.METRICS_TOKEN if token is None else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        status, body = _get(url, timeout, headers)
    except (urllib.error.URLError, OSError) as exc:
        raise CommandError(f"cannot read {url}: {exc}") from exc
    if status != 200:
        hint = " (set METRICS_TOKEN or --token)" if status == 401 else ""
        raise CommandError(f"{url} answered {status}{hint}")
    try:
        return list(text_string_to_metric_families(body.decode()))
    except ValueError as exc:
        raise CommandError(f"{url} is not Prometheus text format: {exc}") from exc


class Command(BaseCommand):
    help = (
        "After a deploy: poll <url>/api/health until it says ok (and, with --expect-version, "
        "reports that release as its `version`) or --timeout passes, then "
        "read <url>/metrics and check the deployment checklist: 5xx share < 0.5 % and p95 "
        "latency < 1 s (health and metrics probes left out). Prints one line; exits 0 or 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="Base URL, e.g. https://api.example.com")
        parser.add_argument(
            "--timeout", type=float, default=120.0, help="Seconds to wait for health (120)"
        )
        parser.add_argument(
            "--interval", type=float, default=2.0, help="Seconds between health polls (2)"
        )
        parser.add_argument("--token", default=None, help="/metrics token (default METRICS_TOKEN)")
        parser.add_argument(
            "--expect-version",
            default=None,
            help="The release that must be serving: /api/health's `version` (the deployed "
            "commit SHA); until it is, the old release still answers and the check waits",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = _check_url(options["url"])
        try:
            summary = self._check(base, options)
        except CommandError as exc:
            self.stdout.write(f"postdeploy_check FAILED: {exc}")
            sys.exit(1)
        self.stdout.write(f"postdeploy_check OK: {summary}")

    def _check(self, base: str, options: dict[str, Any]) -> str:
        started = time.monotonic()
        deadline = started + max(0.0, options["timeout"])
        expected = options.get("expect_version")
        if expected is not None and not expected.strip():
            raise CommandError("--expect-version needs a value (the deployed commit SHA)")
        last = "no answer"
        seen_version: str | None = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                status, body = _get(f"{base}/api/health", timeout=max(1.0, min(10.0, remaining)))
                payload = json.loads(body) if body else {}
                if status == 200 and isinstance(payload, dict) and payload.get("status") == "ok":
                    seen_version = str(payload.get("version"))
                    if expected is None or seen_version == expected:
                        break
                    last = f"HTTP 200 ok, version {seen_version}"
                else:
                    last = f"HTTP {status} {body[:200].decode(errors='replace')}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = str(getattr(exc, "reason", exc))
            if time.monotonic() + options["interval"] > deadline:
                if expected is not None and seen_version is not None:
                    raise CommandError(
                        f"{base}/api/health reports version {seen_version}, not the expected "
                        f"{expected}, after {options['timeout']:g}s (last: {last})"
                    )
                raise CommandError(
                    f"{base}/api/health not ok after {options['timeout']:g}s (last: {last})"
                )
            time.sleep(options["interval"])
        waited = time.monotonic() - started

        stats = alerts.http_stats(
            fetch_metrics(base, options["token"], timeout=10.0), exclude_routes=alerts.PROBE_ROUTES
        )
        release = "" if expected is None else f" (version {expected})"
        figures = (
            f"health ok{release} after {waited:.1f}s; {int(stats.requests)} requests, "
            f"5xx {stats.error_ratio * 100:.2f}% (max {POSTDEPLOY_5XX_RATIO_MAX * 100:g}%), p95 "
            + ("n/a" if stats.p95_seconds is None else f"{stats.p95_seconds:.3f}s")
            + f" (max {POSTDEPLOY_P95_SECONDS_MAX:g}s)"
        )
        problems = []
        if stats.error_ratio >= POSTDEPLOY_5XX_RATIO_MAX:
            problems.append("5xx share too high")
        if stats.p95_seconds is not None and stats.p95_seconds >= POSTDEPLOY_P95_SECONDS_MAX:
            problems.append("p95 too slow")
        if problems:
            raise CommandError(f"{', '.join(problems)}: {figures}")
        return figures
