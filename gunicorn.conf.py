"""gunicorn settings, sized for a 512 MB container (see README "Processes").

Each gthread worker holds one Django process (~95-130 MB RSS); 3 workers x 4 threads stay
inside 512 MB and serve I/O-bound API requests concurrently.
"""

import importlib.util
import os
import shutil
import sys
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


def _serving_worker() -> type:
    """chefops/serving.py's worker class, loaded by its file path: importing it as
    ``chefops.serving`` would run the chefops package (Celery, the Django settings) in the
    master, and every worker would inherit those modules unchanged across a SIGHUP reload
    (with GUNICORN_PRELOAD=true, the default, the master imports the application anyway: this
    keeps GUNICORN_PRELOAD=false's reloads whole)."""
    path = Path(__file__).resolve().parent / "chefops" / "serving.py"
    spec = importlib.util.spec_from_file_location("chefops_serving", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    worker: type = module.ChefOpsThreadWorker
    return worker


# gthread, with new connections balanced over the workers (each accepts only while no sibling
# holds fewer connections) and unread request bodies settled before the response.
worker_class = _serving_worker()
# Connections one worker holds at most (busy + kept alive + waiting for their first bytes).
# The balancing spreads keep-alive clients over every worker (a low cap used to force that,
# and left all but 18 clients waiting in the listen backlog: issue #13); this cap only bounds
# a worker's file descriptors and memory. Beyond workers x this, connections wait in the
# listen backlog until a held one closes. See README "Processes" and docs/benchmarks.md.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "500"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# Seconds an idle keep-alive connection stays open. Behind a proxy that pools connections to
# the app, set it above the proxy's idle timeout, or the proxy may send a request on a
# connection the worker is closing (a 502).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycling bounds a leak; a restart costs a worker's boot (1-5 s of CPU, the worker missing
# meanwhile). At 2000 requests busy workers restarted every few seconds; RSS stays flat
# without recycling (92 -> 93 MB over ~57,000 requests per worker, docs/benchmarks.md). One
# worker restarts at a time (chefops/serving.py).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "2000"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# GUNICORN_PRELOAD=true: the master imports the application once and forks the workers from it,
# so the pages of the imported code stay shared (copy-on-write; gc.freeze() keeps the
# collector from touching them). A SIGHUP then reloads no code: a deploy restarts the master.
# Measured (docs/benchmarks.md, issue #18): PSS of master + 3 workers 259 -> 181 MiB.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").strip().lower() in ("1", "true", "yes")
# gunicorn's control socket (gunicornc) lives at one fixed path per user ($HOME/.gunicorn):
# several masters on one machine (tests, `make web` beside a benchmark) would take it from
# each other, and a container's home may not be writable. Nothing here uses it.
control_socket_disable = True

# --- Prometheus multiprocess mode (chefops/ops/metrics.py) -------------------------------------
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


def when_ready(server: Any) -> None:
    """Before the first fork: with the application preloaded, its objects move to the
    collector's permanent generation, so no collection in a worker writes to (and copies) the
    pages it shares with the master."""
    if preload_app:
        import gc

        gc.collect()
        gc.freeze()


def post_worker_init(worker: Any) -> None:
    """A booted worker digests the release's sources (the read and principal caches key their
    entries by it) before it accepts requests, not during its first one (~30 ms). Skipped when
    the application is not Django's (bench/bare_wsgi.py, the benchmark's reference)."""
    django_conf = sys.modules.get("django.conf")
    if django_conf is not None and django_conf.settings.configured:
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
