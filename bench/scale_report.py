"""Pure parts of the scale harness (bench/scale.py): configuration files and the verdict.

No process, socket or Django import here, so bench/tests/test_scale_report.py checks them
cheaply: the HAProxy configuration the harness writes, the classification of responses, and
the judging of the figures a run collected. PgBouncer's configuration comes from the test
harness's generator (``chefops.testing.pgbouncer.pgbouncer_config``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# The guide's budget: a 50-connection plan, 48 for the application, 2 left for operators.
SERVER_CONNECTION_LIMIT = 48
MAX_CONNECTIONS = 50

# Business refusals a write may meet under concurrent load (the day's notice period passed,
# the contract is not ACTIVE at this instant, an e-mail already registered): the API's answer
# to the request, not a failure of the deployment.
BUSINESS_REFUSALS = frozenset({400, 409})


def classify(method: str, status: int) -> str:
    """``ok`` (2xx), ``refused`` (an expected business 4xx on a write) or ``error``."""
    if 200 <= status < 300:
        return "ok"
    if method != "GET" and status in BUSINESS_REFUSALS:
        return "refused"
    return "error"


def haproxy_config(
    *,
    listen_port: int,
    servers: Sequence[tuple[str, int]],
    stats_socket: str,
    user: str | None = None,
) -> str:
    """Round robin over ``servers`` (name, port) on 127.0.0.1, health-checked on /api/health.

    A server is marked down after 2 failed checks 500 ms apart and up after 2 good ones. A
    connection the server refuses (its process gone) or closes without a response (a
    kept-alive connection the stopping server closed) is retried on another server
    (``retries`` + ``option redispatch`` + ``retry-on conn-failure empty-response``, with the
    whole request buffered first, ``option http-buffer-request``): neither case can have
    reached the application, so even a POST is safe to resend. As a platform
    router does, it terminates "TLS" for the app: X-Forwarded-Proto https, X-Forwarded-For.
    """
    lines = [
        "global",
        "    maxconn 2000",
        "    log stdout format raw local0 info",
        f"    stats socket {stats_socket} mode 600 level admin",
    ]
    if user:
        lines.append(f"    user {user}")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 30s",
        "    timeout http-keep-alive 4s",
        "    option forwardfor",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        # The whole request (body too) in the buffer before a server is picked, so a retry
        # can resend it.
        "    option http-buffer-request",
        "",
        "frontend chefops",
        f"    bind 127.0.0.1:{listen_port}",
        "    http-request set-header X-Forwarded-Proto https",
        "    default_backend web",
        "",
        "backend web",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri /api/health ver HTTP/1.1 hdr Host 127.0.0.1",
        "    http-check expect status 200",
        "    default-server inter 500ms fall 2 rise 2 maxconn 64",
        "    http-response set-header X-Served-By %s",
    ]
    lines += [f"    server {name} 127.0.0.1:{port} check" for name, port in servers]
    return "\n".join(lines) + "\n"


@dataclass
class Figures:
    """What a run measured; ``judge`` turns it into the table's verdicts."""

    requests: int = 0
    ok: int = 0
    refused: int = 0  # expected business 4xx on writes
    errors: int = 0  # non-2xx that are not business refusals, and connection failures
    timeouts: int = 0
    by_endpoint: dict[str, list[int]] = field(default_factory=dict)  # name -> [n, ok, ref, err]
    error_samples: list[str] = field(default_factory=list)
    peak_server_connections: int = 0
    peak_app_clients: int = 0  # connections of every app process to PgBouncer (pooled or not)
    staleness_checks: int = 0
    stale_reads: int = 0
    outbox_events: int = 0
    outbox_unprocessed: int = 0
    ledger_duplicates: int = 0
    effect_mismatches: list[str] = field(default_factory=list)
    job_runs: dict[str, int] = field(default_factory=dict)  # job -> runs that did the work
    job_periods: dict[str, int] = field(default_factory=dict)  # job -> periods spanned
    job_duplicate_effects: int = 0
    kill_failed_in_flight: int = 0
    kill_failed_after: int = 0
    kill_marked_down_s: float | None = None
    restart_marked_up_s: float | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class Verdict:
    criterion: str
    value: str
    passed: bool


def judge(f: Figures) -> list[Verdict]:
    jobs_ok = bool(f.job_runs) and all(
        f.job_runs.get(job, 0) == f.job_periods.get(job, -1) for job in f.job_runs
    )
    jobs_value = ", ".join(
        f"{job} {f.job_runs[job]} run(s) / {f.job_periods.get(job, '?')} period(s)"
        for job in sorted(f.job_runs)
    )
    return [
        Verdict(
            "requests (2xx / business 4xx)",
            f"{f.requests} ({f.ok} / {f.refused})",
            True,
        ),
        Verdict("errors (non-2xx, not business)", str(f.errors), f.errors == 0),
        Verdict("timeouts", str(f.timeouts), f.timeouts == 0),
        Verdict(
            "peak server connections",
            f"{f.peak_server_connections} of {MAX_CONNECTIONS} (limit {SERVER_CONNECTION_LIMIT})",
            0 < f.peak_server_connections <= SERVER_CONNECTION_LIMIT,
        ),
        Verdict(
            "peak app connections to PgBouncer",
            f"{f.peak_app_clients} (3 instances x 16 = {SERVER_CONNECTION_LIMIT})",
            0 < f.peak_app_clients <= SERVER_CONNECTION_LIMIT,
        ),
        Verdict(
            "stale reads (write on A, read on B and C)",
            f"{f.stale_reads} of {f.staleness_checks} checks",
            f.staleness_checks > 0 and f.stale_reads == 0,
        ),
        Verdict(
            "outbox events processed exactly once",
            f"{f.outbox_events} events, {f.outbox_unprocessed} not processed, "
            f"{f.ledger_duplicates} duplicate ledger rows"
            + (f"; {'; '.join(f.effect_mismatches)}" if f.effect_mismatches else ""),
            f.outbox_events > 0
            and f.outbox_unprocessed == 0
            and f.ledger_duplicates == 0
            and not f.effect_mismatches,
        ),
        Verdict(
            "generation and fallback once per period",
            (jobs_value or "no runs") + f", {f.job_duplicate_effects} duplicate effects",
            jobs_ok and f.job_duplicate_effects == 0,
        ),
        Verdict(
            "kill one instance: failed requests",
            f"{f.kill_failed_after} after the kill, {f.kill_failed_in_flight} in flight",
            f.kill_failed_after == 0,
        ),
        Verdict(
            "kill one instance: balancer",
            (
                f"marked down after {_seconds(f.kill_marked_down_s)}, "
                f"up again {_seconds(f.restart_marked_up_s)} after the restart"
            ),
            f.kill_marked_down_s is not None and f.restart_marked_up_s is not None,
        ),
    ]


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def table(verdicts: Sequence[Verdict]) -> str:
    """A Markdown table, one row per criterion."""
    rows = ["| criterion | value | verdict |", "|---|---|---|"]
    rows += [f"| {v.criterion} | {v.value} | {'pass' if v.passed else 'FAIL'} |" for v in verdicts]
    return "\n".join(rows)


def endpoint_table(f: Figures) -> str:
    rows = [
        "| endpoint | requests | 2xx | business 4xx | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in sorted(f.by_endpoint):
        n, ok, refused, errors = f.by_endpoint[name]
        rows.append(f"| {name} | {n} | {ok} | {refused} | {errors} |")
    return "\n".join(rows)
