"""The scale harness's cheap parts (bench/scale.py, bench/scale_report.py; `make scale` is the
real proof): the HAProxy and PgBouncer configurations it writes, how responses are classified,
how the figures are judged, and that stopping a process stops its whole process group."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.scale import PGBOUNCER_POOL, Stack, periods_spanned, scale_pgbouncer_config
from bench.scale_report import (
    SERVER_CONNECTION_LIMIT,
    Figures,
    classify,
    haproxy_config,
    judge,
    table,
)
from chefops.testing.pgbouncer import pgbouncer_config

SERVERS = [("web1", 8001), ("web2", 8002), ("web3", 8003)]


def test_haproxy_config_balances_round_robin_with_health_checks_and_retries() -> None:
    config = haproxy_config(listen_port=9000, servers=SERVERS, stats_socket="/run/h.sock")
    assert "bind 127.0.0.1:9000" in config
    assert "balance roundrobin" in config
    assert "uri /api/health" in config
    assert "http-check expect status 200" in config
    for name, port in SERVERS:
        assert f"server {name} 127.0.0.1:{port} check" in config
    # A stopped instance's refused or unanswered connections go to another server.
    assert "retries 3" in config
    assert "option redispatch 1" in config
    assert "retry-on conn-failure empty-response" in config
    assert "option http-buffer-request" in config
    # The app sees what a platform router sends (NUM_PROXIES=1, TLS ended in front).
    assert "option forwardfor" in config
    assert "X-Forwarded-Proto https" in config


@pytest.mark.skipif(
    not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()),
    reason="haproxy is not installed (bin/ensure-haproxy.sh)",
)
def test_haproxy_accepts_the_generated_config(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(
        haproxy_config(listen_port=9000, servers=SERVERS, stats_socket=str(tmp_path / "s"))
    )
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    done = subprocess.run(
        [binary, "-c", "-f", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_pgbouncer_config_caps_server_connections_in_transaction_mode() -> None:
    """The harness's PgBouncer comes from the test harness's generator, with its own cap."""
    config = scale_pgbouncer_config(Path("/w"), port=6432, server_port=5999)
    assert "listen_port = 6432" in config
    assert "pool_mode = transaction" in config
    assert f"max_db_connections = {PGBOUNCER_POOL}" in config
    assert f"default_pool_size = {PGBOUNCER_POOL}" in config
    assert "reserve_pool_size = 0" in config
    assert "server_idle_timeout = 30" in config
    assert "* = host=127.0.0.1 port=5999" in config
    assert "auth_file = /w/userlist.txt" in config
    for run_as, line in ((None, "user ="), ("postgres", "user = postgres")):
        config = pgbouncer_config(
            port=1, workdir=Path("/w"), server_port=2, user="postgres", run_as=run_as
        )
        assert (line in config) is (run_as is not None)


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("GET", 200, "ok"),
        ("POST", 201, "ok"),
        ("POST", 400, "refused"),  # e.g. a contract paused by another request meanwhile
        ("POST", 409, "refused"),
        ("GET", 400, "error"),  # a read is never a business refusal
        ("GET", 404, "error"),
        ("POST", 401, "error"),
        ("POST", 429, "error"),
        ("GET", 502, "error"),
        ("POST", 503, "error"),
    ],
)
def test_classify(method: str, status: int, expected: str) -> None:
    assert classify(method, status) == expected


def passing() -> Figures:
    return Figures(
        requests=100,
        ok=98,
        refused=2,
        peak_server_connections=20,
        peak_app_clients=30,
        staleness_checks=10,
        outbox_events=50,
        job_runs={"generate_service_days": 1, "apply_fallback": 1},
        job_periods={"generate_service_days": 1, "apply_fallback": 1},
        kill_failed_in_flight=1,
        kill_marked_down_s=1.0,
        restart_marked_up_s=2.0,
    )


def test_judge_passes_a_clean_run() -> None:
    verdicts = judge(passing())
    assert all(v.passed for v in verdicts), table(verdicts)
    assert "| kill one instance: failed requests | 0 after the kill, 1 in flight | pass |" in (
        table(verdicts)
    )


@pytest.mark.parametrize(
    ("change", "criterion"),
    [
        ({"errors": 1}, "errors (non-2xx, not business)"),
        ({"timeouts": 1}, "timeouts"),
        (
            {"peak_server_connections": SERVER_CONNECTION_LIMIT + 1},
            "peak server connections",
        ),
        ({"peak_server_connections": 0}, "peak server connections"),  # never measured
        (
            {"peak_app_clients": SERVER_CONNECTION_LIMIT + 1},
            "peak app connections to PgBouncer",
        ),
        ({"stale_reads": 1}, "stale reads (write on A, read on B and C)"),
        ({"staleness_checks": 0}, "stale reads (write on A, read on B and C)"),
        ({"outbox_unprocessed": 1}, "outbox events processed exactly once"),
        ({"ledger_duplicates": 1}, "outbox events processed exactly once"),
        (
            {"effect_mismatches": ["x: 2 events, 1 writes"]},
            "outbox events processed exactly once",
        ),
        ({"outbox_events": 0}, "outbox events processed exactly once"),
        ({"job_duplicate_effects": 1}, "generation and fallback once per period"),
        (
            {"job_runs": {"generate_service_days": 2, "apply_fallback": 1}},
            "generation and fallback once per period",
        ),
        ({"job_runs": {}}, "generation and fallback once per period"),
        ({"kill_failed_after": 1}, "kill one instance: failed requests"),
        ({"kill_marked_down_s": None}, "kill one instance: balancer"),
        ({"restart_marked_up_s": None}, "kill one instance: balancer"),
    ],
)
def test_judge_fails_the_criterion_a_bad_figure_breaks(
    change: dict[str, object], criterion: str
) -> None:
    figures = passing()
    for name, value in change.items():
        setattr(figures, name, value)
    failed = [v.criterion for v in judge(figures) if not v.passed]
    assert failed == [criterion]


def test_a_job_that_spans_two_periods_may_run_twice() -> None:
    hour = 3600.0
    assert periods_spanned("apply_fallback", 10 * hour + 10, 10 * hour + 50) == 1
    assert periods_spanned("apply_fallback", 10 * hour + 3590, 11 * hour + 5) == 2
    assert periods_spanned("generate_service_days", 10 * hour, 11 * hour) == 1


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    pidfile = tmp_path / "child.pid"
    # A parent that ignores SIGTERM and a child of its own, as a gunicorn master and worker.
    proc = stack.spawn(
        "group",
        ["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"],
        dict(os.environ),
    )
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the child never started"
        assert proc.poll() is None
        time.sleep(0.01)
    child = int(pidfile.read_text())
    stack.stop("group", signal.SIGTERM, timeout=2)
    assert proc.poll() is not None
    deadline = time.monotonic() + 30
    while alive(child):  # SIGKILLed with its group; reaped by whoever adopted it
        assert time.monotonic() < deadline, "the child outlived its group's stop"
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"
