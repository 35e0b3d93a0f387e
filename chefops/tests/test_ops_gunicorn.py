"""Against a real gunicorn with two workers: summed metrics, and the post-deploy check.

The server uses its own migrated SQLite database in a temporary directory, whichever database
the rest of the suite runs on.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from chefops.testing.gunicorn import (
    NOT_UP_YET,
    free_port,
    http_get,
    running_site,
    server_env,
    start_gunicorn,
    wait_until_serving,
)

TOKEN = "metrics-token-for-tests"
pytestmark = pytest.mark.slow


class Server:
    def __init__(self, base: str, metrics_dir: Path) -> None:
        self.base = base
        self.metrics_dir = metrics_dir

    def health_count(self) -> float:
        status, body = http_get(f"{self.base}/metrics", TOKEN)
        assert status == 200, body
        total = 0.0
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if (
                    sample.name == "chefops_http_requests_total"
                    and sample.labels["route"] == "api/health"
                ):
                    total += sample.value
        return total

    def health_count_by_worker(self) -> dict[str, float]:
        counts = {}
        for path in self.metrics_dir.glob("counter_*.db"):
            counts[path.stem.split("_", 1)[1]] = sum(
                value
                for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path))
                if '"api/health"' in key
            )
        return counts


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("gunicorn")
    metrics_dir = tmp / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale file from a previous run")
    overrides = {
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
    }
    with running_site(tmp, overrides) as gunicorn:
        yield Server(gunicorn.base, metrics_dir)


def test_master_start_wipes_old_metric_files(server: Server) -> None:
    assert not (server.metrics_dir / "counter_99999.db").exists()


def test_metrics_sum_the_counts_of_both_workers(server: Server) -> None:
    before = server.health_count()
    sent = 0
    # urllib opens a new connection per request; 8 at once spread over both workers (a worker
    # accepts only while no sibling holds fewer connections, chefops/serving.py).
    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(max_workers=8) as pool:
        while time.monotonic() < deadline:
            statuses = list(pool.map(lambda _: http_get(f"{server.base}/api/health")[0], range(40)))
            assert statuses == [200] * 40
            sent += 40
            if sum(1 for n in server.health_count_by_worker().values() if n > 0) >= 2:
                break
    by_worker = server.health_count_by_worker()
    assert sum(1 for n in by_worker.values() if n > 0) >= 2, by_worker  # both workers served
    assert server.health_count() == before + sent
    assert server.health_count() == sum(by_worker.values())


def test_metrics_need_the_token(server: Server) -> None:
    assert http_get(f"{server.base}/metrics")[0] == 401
    assert http_get(f"{server.base}/metrics", "wrong")[0] == 401


def test_postdeploy_check_passes_against_a_healthy_server(
    server: Server, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chefops.management.commands import postdeploy_check

    settings.METRICS_TOKEN = TOKEN
    # The server's p95 depends on how busy this machine is; the latency rule itself is
    # covered where the figures are given (test_ops_metrics / the command's unit tests).
    monkeypatch.setattr(postdeploy_check, "POSTDEPLOY_P95_SECONDS_MAX", 3600.0)
    assert http_get(f"{server.base}/api/nowhere")[0] == 404  # 4xx is not a failure
    out = StringIO()
    call_command("postdeploy_check", "--url", server.base, "--timeout", "120", stdout=out)
    line = out.getvalue().strip()
    assert line.startswith("postdeploy_check OK: health ok after "), line
    assert "5xx 0.00%" in line and "p95 " in line


def test_postdeploy_check_fails_when_the_p95_is_over_its_limit(
    server: Server, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chefops.management.commands import postdeploy_check

    settings.METRICS_TOKEN = TOKEN
    assert http_get(f"{server.base}/api/nowhere")[0] == 404  # one counted request at least
    monkeypatch.setattr(postdeploy_check, "POSTDEPLOY_P95_SECONDS_MAX", 1e-9)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("postdeploy_check", "--url", server.base, "--timeout", "120", stdout=out)
    assert exit_info.value.code == 1
    assert "p95 too slow" in out.getvalue()


def test_postdeploy_check_fails_without_the_metrics_token(server: Server, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("postdeploy_check", "--url", server.base, "--timeout", "5", stdout=out)
    assert exit_info.value.code == 1
    assert "answered 401 (set METRICS_TOKEN or --token)" in out.getvalue()


def test_postdeploy_check_fails_against_a_stopped_server() -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    out = StringIO()
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "postdeploy_check", "--url", base, "--timeout", "1", "--interval", "0.2", stdout=out
        )
    assert exit_info.value.code == 1
    assert time.monotonic() - started < 60  # gave up after its timeout, did not hang
    line = out.getvalue().strip()
    assert line.startswith(f"postdeploy_check FAILED: {base}/api/health not ok after 1s"), line
    assert "refused" in line.lower()


@pytest.mark.django_db
def test_check_alerts_can_read_a_running_servers_metrics(server: Server, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    out = StringIO()
    # Another check (e.g. this machine's disk) may fire and exit 1; the HTTP lines are the point.
    with contextlib.suppress(SystemExit):
        call_command("check_alerts", "--url", server.base, stdout=out)
    lines = {line.split()[1]: line for line in out.getvalue().splitlines()[:-1]}
    assert lines["http_5xx_ratio"].startswith("ok ")
    # The p95 is read from the server's histogram; whether it fires depends on how busy the
    # machine is, so only "it was read" is asserted.
    assert re.match(r"(ok|FIRING) +http_p95_latency +\d+\.\d+s ", lines["http_p95_latency"])


def test_without_a_configured_directory_gunicorn_uses_and_removes_a_private_one(
    tmp_path: Path,
) -> None:
    """Also: with the database unreachable, /metrics still answers (database_up 0)."""
    env = server_env(
        tmp_path,
        {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nothing",
            "WEB_CONCURRENCY": "1",
        },
    )
    gunicorn = start_gunicorn(env, tmp_path)
    private: list[Path] = []
    try:
        wait_until_serving(gunicorn, workers=1, status=503)
        roots = ("/dev/shm", tempfile.gettempdir())  # noqa: S108 - where gunicorn.conf.py puts it
        pid = gunicorn.proc.pid
        private = [p for root in roots for p in Path(root).glob(f"chefops-metrics-{pid}")]
        assert len(private) == 1 and any(private[0].glob("counter_*.db"))
        status, body = http_get(f"{gunicorn.base}/metrics")
        assert status == 200
        text = body.decode()
        assert 'chefops_http_requests_total{method="GET",route="api/health",status="5xx"}' in text
        assert "chefops_database_up 0.0" in text
        assert "chefops_database_size_bytes" not in text
        assert "chefops_disk_free_bytes" in text
    finally:
        gunicorn.stop()
    assert not private[0].exists()


def test_counts_survive_worker_recycling_without_piling_up_files(tmp_path: Path) -> None:
    """max_requests recycles workers; child_exit folds their counts into an archive file."""
    metrics_dir = tmp_path / "metrics"
    env = server_env(  # its SQLite database unmigrated: health needs no tables
        tmp_path,
        {
            "WEB_CONCURRENCY": "2",
            "GUNICORN_MAX_REQUESTS": "5",
            "GUNICORN_MAX_REQUESTS_JITTER": "0",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "METRICS_TOKEN": "",
        },
    )
    gunicorn = start_gunicorn(env, tmp_path)
    try:
        wait_until_serving(gunicorn, workers=2, status=200)
        before = health_total(gunicorn.base)
        served = 0
        deadline = time.monotonic() + 300  # each recycled worker boots again: slow when busy
        while served < 22:
            assert gunicorn.proc.poll() is None, gunicorn.failure("gunicorn exited")
            assert time.monotonic() < deadline, gunicorn.failure(f"{served} of 22 served")
            try:
                # A refused connection was never served; the long timeout means an accepted
                # one is always answered, so `served` is exactly what the workers counted.
                if http_get(f"{gunicorn.base}/api/health", timeout=120)[0] == 200:
                    served += 1
            except NOT_UP_YET:
                time.sleep(0.1)  # a recycled worker's replacement is booting
        # A recycled worker's counts reach the archive when the master has reaped it; one
        # worker restarts at a time (chefops/serving.py), so keep serving until one has.
        while not (metrics_dir / "counter_archive.db").exists():
            assert gunicorn.proc.poll() is None, gunicorn.failure("gunicorn exited")
            assert time.monotonic() < deadline, gunicorn.failure("no worker was recycled")
            try:
                if http_get(f"{gunicorn.base}/api/health", timeout=120)[0] == 200:
                    served += 1
            except NOT_UP_YET:
                time.sleep(0.1)  # a recycled worker's replacement is booting
        assert health_total(gunicorn.base) == before + served
        counter_files = sorted(p.name for p in metrics_dir.glob("counter_*.db"))
        assert "counter_archive.db" in counter_files  # a recycled worker's counts were kept
        assert len(counter_files) <= 3, counter_files  # archive + the two live workers
    finally:
        gunicorn.stop()


def health_total(base: str) -> float:
    """``/api/health`` requests counted by every worker, dead ones included."""
    status, body = http_get(f"{base}/metrics")
    assert status == 200
    return sum(
        s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "chefops_http_requests_total" and s.labels["route"] == "api/health"
    )
