"""gunicorn settings, sized for a 512 MB container (see README "Processes").

Each sync worker with threads holds one Django process (~60-90 MB RSS); 3 workers x 4 threads
stay well inside 512 MB and serve I/O-bound API requests concurrently.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import environ

# The project's .env (README "Configuration"), as the Django settings read it: this file runs
# in the master before any Django code, and its values (PORT, WEB_CONCURRENCY...) would
# otherwise be ignored. Variables already in the environment win.
environ.Env.read_env(Path(__file__).resolve().parent / ".env", overwrite=False)

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Connections one worker holds at most (busy + kept alive). A worker at the limit stops
# accepting and answers beyond its keep-alive share with "Connection: close", so clients'
# persistent connections spread over every worker instead of piling on whichever accepts
# first (seen: 12 of 16 benchmark connections on one worker, that worker's GIL the
# bottleneck and the p95 twice the median). See docs/benchmarks.md.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", str(threads + 2)))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
preload_app = False
# gunicorn's control socket (gunicornc) lives at one fixed path per user ($HOME/.gunicorn):
# several masters on one machine (tests, `make web` beside a benchmark) would take it from
# each other, and a container's home may not be writable. Nothing here uses it.
control_socket_disable = True

# --- Prometheus multiprocess mode (chefops/metrics.py) -------------------------------------
# Every worker writes its metric values to mmap files in this directory and /metrics sums
# them, so a scrape is right whichever worker answers. Set before any worker imports
# prometheus_client (workers inherit the master's environment). Without PROMETHEUS_MULTIPROC_DIR
# a private directory is made for this master and removed when it exits.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()  # noqa: S108
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(_shm, f"chefops-metrics-{os.getpid()}")
    # Remembered in the environment: a SIGHUP reload reads this file again.
    os.environ["CHEFOPS_METRICS_DIR_OWNED"] = "1"
_METRICS_DIR_OWNED = os.environ.get("CHEFOPS_METRICS_DIR_OWNED") == "1"


def on_starting(server: Any) -> None:
    """Master start: an empty directory, so counters start from zero with the new code."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def post_worker_init(worker: Any) -> None:
    """A booted worker digests the release's sources (the read and principal caches key their
    entries by it) before it accepts requests, not during its first one (~30 ms)."""
    from chefops import readcache

    readcache.release()
    # Orchestration and the test harness wait for this line, not for a time.
    worker.log.info("Worker ready (pid: %s)", worker.pid)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (crash, timeout or max_requests recycling)."""
    from prometheus_client import multiprocess

    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    multiprocess.mark_process_dead(worker.pid, path)
    merge_dead_worker_metrics(worker.pid, path)


def on_exit(server: Any) -> None:
    if _METRICS_DIR_OWNED:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def merge_dead_worker_metrics(pid: int, path: str) -> None:
    """Fold a dead worker's counter/histogram files into one archive file per type.

    Counters must keep what dead workers counted, but with max_requests recycling a file per
    dead worker would pile up and make every scrape slower. Values are added to
    `<type>_archive.db` (still read by MultiProcessCollector: the type is the name's prefix),
    then the worker's file is removed. Only the master calls this, one worker at a time.
    """
    from prometheus_client.mmap_dict import MmapedDict

    for kind in ("counter", "histogram", "summary"):
        dead = Path(path) / f"{kind}_{pid}.db"
        if not dead.exists():
            continue
        values = MmapedDict.read_all_values_from_file(str(dead))
        archive = MmapedDict(str(Path(path) / f"{kind}_archive.db"))
        try:
            for key, value, _timestamp, _pos in values:
                current, _ = archive.read_value(key)
                archive.write_value(key, current + value, 0.0)
        finally:
            archive.close()
        dead.unlink()
