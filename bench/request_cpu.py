"""CPU per request of the WSGI application in-process, in the production settings (issue #18).

    .venv/bin/python bench/request_cpu.py [--requests 3000] [--repeat 5] [--profile ROUTE]

Calls ``chefops.wsgi.application`` directly (no server, no sockets) with the environ gunicorn
would build behind one proxy (``X-Forwarded-Proto: https``, ``X-Forwarded-For``), and measures
``time.process_time`` over ``--requests`` requests per route, ``--repeat`` times, and the CPU
time of the PostgreSQL backend that served them (read from /proc: the database on this
machine); the median of the repetitions is reported (the machine may be shared: CPU time is
not inflated by other processes the way wall time is, but caches and frequency are). Routes:
``/api/health``, a bare WSGI hello app (bench/bare_wsgi.py, the floor), the caterer's
contract list, the client's 30-day service-day range, weekly report and finance metrics, the
caterer's finance metrics (read cache off, so the response is computed, unless
``--read-cache``; the principal cache on as in production). ``--profile ROUTE`` prints
cProfile's top functions for one route.

Uses the bench database of bench/http_load.py (``manage.py bench_data`` must have loaded it)
and the Redis database 13 under a key prefix of its own, deleted at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/chefops_bench_http"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"


def production_env(
    db_url: str, redis_url: str, prefix: str, read_cache_seconds: int = 0
) -> dict[str, str]:
    """What DJANGO_ENV=production requires (chefops/settings.py), for a local benchmark."""
    return {
        "DJANGO_ENV": "production",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": prefix,
        "SECRET_KEY": "bench-" + "k" * 60,
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "METRICS_TOKEN": "bench-metrics-token",
        "NUM_PROXIES": "1",
        "LOG_LEVEL": "WARNING",
        "READ_CACHE_SECONDS": str(read_cache_seconds),
        "AUTH_CACHE_SECONDS": "300",
        "ACCESS_TOKEN_MINUTES": "240",
        "DEMO_SEED_ENABLED": "false",
        "ALLOW_LOCAL_ARCHIVES": "true",
    }


def environ_for(path: str, token: str | None) -> dict[str, Any]:
    route, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return environ


def call(app: Callable[..., Iterable[bytes]], path: str, token: str | None) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(code)

    result = app(environ_for(path, token), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()  # Django's request_finished (connections returned), as gunicorn does
    return status[0], body


def backend_cpu_s(pid: int | None) -> float | None:
    """CPU seconds of a PostgreSQL backend on this machine (/proc), None if not readable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pid() -> int | None:
    """The PostgreSQL backend of this thread's connection (the one the requests use here)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    return int(row[0]) if row else None


def cpu_ms_per_request(
    app: Any, path: str, token: str | None, requests: int
) -> tuple[float, float | None]:
    """This process's CPU per request, and the PostgreSQL backend's (None when it cannot be
    read, or the connection was replaced during the run)."""
    pid = backend_pid()
    backend_before = backend_cpu_s(pid)
    started = time.process_time()
    for _ in range(requests):
        call(app, path, token)
    own = (time.process_time() - started) * 1000 / requests
    backend_after = backend_cpu_s(pid)
    if backend_before is None or backend_after is None or backend_pid() != pid:
        return own, None
    return own, (backend_after - backend_before) * 1000 / requests


def package_of(filename: str) -> str:
    """The distribution or project app a profiled function lives in ("builtins" for C)."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins/generated"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    try:
        return Path(filename).resolve().relative_to(ROOT).parts[0]
    except ValueError:
        return "stdlib"


def print_by_package(stats: pstats.Stats, requests: int) -> None:
    """Own time (cProfile's tottime) per package, per request, largest first."""
    own: dict[str, float] = {}
    raw: Any = stats
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.stats.items():
        package = package_of(filename)
        own[package] = own.get(package, 0.0) + tottime
    total = sum(own.values()) or 1.0
    print("# own CPU time per package (profiled, so inflated), per request")
    for package, seconds in sorted(own.items(), key=lambda item: -item[1]):
        print(f"{package:24s} {seconds * 1e6 / requests:8.1f} us  {seconds / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--routes", default="bare,health,list,range,report,metrics")
    parser.add_argument(
        "--read-cache",
        action="store_true",
        help="READ_CACHE_SECONDS=300: every measured request a hit of the read cache",
    )
    parser.add_argument("--profile", default="", help="a route name: cProfile it instead")
    parser.add_argument("--callers", default="", help="with --profile: who calls these functions")
    parser.add_argument(
        "--no-conn-health-checks",
        action="store_true",
        help="CONN_HEALTH_CHECKS off (no SELECT 1 on a reused connection), for comparison",
    )
    parser.add_argument(
        "--root", default=str(ROOT), help="the checkout whose code is measured (a baseline)"
    )
    args = parser.parse_args()
    prefix = f"chefops-bench-cpu-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        production_env(args.db_url, args.redis_url, prefix, 300 if args.read_cache else 0)
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "chefops.settings"
    # As under gunicorn (gunicorn.conf.py): metrics in mmap files, one set per process.
    metrics_dir = tempfile.TemporaryDirectory(prefix="chefops-bench-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, args.root)
    # Celery's Django fix-up puts the working directory first on sys.path: run from the
    # measured checkout, or its modules would come from wherever this was started.
    os.chdir(args.root)
    import django

    django.setup()  # before the project's modules: their models need the app registry
    from django.db import connection

    from bench.bare_wsgi import application as bare
    from chefops.testing.cast import session_access_token
    from chefops.wsgi import application
    from companies.models import User
    from contracts.models import Contract
    from servicedays import rules
    from servicedays.management.commands.bench_data import catering_email, client_email

    client = User.objects.select_related("company").get(email=client_email(0))
    caterer = User.objects.select_related("company").get(email=catering_email(0))
    contract = Contract.objects.filter(client_company=client.company).order_by("pk").first()
    assert contract is not None
    today = datetime.now(UTC).date()
    client_token, caterer_token = session_access_token(client), session_access_token(caterer)
    if args.no_conn_health_checks:
        connection.settings_dict["CONN_HEALTH_CHECKS"] = False  # read by the next connect()
    connection.close()
    routes: dict[str, tuple[Any, str, str | None]] = {
        "bare": (bare, "/", None),
        "health": (application, "/api/health", None),
        "list": (application, "/api/contracts?limit=100", caterer_token),
        "range": (
            application,
            f"/api/contracts/{contract.pk}/service-days"
            f"?from={(today - timedelta(days=29)).isoformat()}&to={today.isoformat()}",
            client_token,
        ),
        "report": (
            application,
            f"/api/contracts/{contract.pk}/reports/weekly"
            f"?weekStart={(rules.monday_of_week(today) - timedelta(days=7)).isoformat()}",
            client_token,
        ),
        "metrics": (application, "/api/contracts/finance-metrics", client_token),
        "metrics-caterer": (application, "/api/contracts/finance-metrics", caterer_token),
    }
    try:
        for name in args.routes.split(","):
            app, path, token = routes[name]
            status, _ = call(app, path, token)
            assert status.startswith("200"), (name, status)
            for _ in range(50):  # warm-up: connections, caches, lazy imports
                call(app, path, token)
        if args.profile:
            app, path, token = routes[args.profile]
            profiler = cProfile.Profile(time.process_time)  # CPU, not waits
            profiler.enable()
            for _ in range(args.requests):
                call(app, path, token)
            profiler.disable()
            out = io.StringIO()
            print_by_package(pstats.Stats(profiler), args.requests)
            stats = pstats.Stats(profiler, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(35)
            stats.sort_stats("cumulative").print_stats(45)
            if args.callers:
                stats.print_callers(args.callers)
            print(out.getvalue())
            return
        load = os.getloadavg()[0]
        print(
            f"# CPU ms per request, in-process, production settings; load {load:.1f}; "
            "PostgreSQL: its backend's CPU per request (clock ticks, so coarse on short runs)"
        )
        for name in args.routes.split(","):
            app, path, token = routes[name]
            pairs = [
                cpu_ms_per_request(app, path, token, args.requests) for _ in range(args.repeat)
            ]
            runs = [own for own, _ in pairs]
            backend = [pg for _, pg in pairs if pg is not None]
            pg = f"  PostgreSQL {statistics.median(backend):.3f} ms" if backend else ""
            print(
                f"{name:8s} median {statistics.median(runs):.3f} ms{pg}  "
                f"(runs: {' '.join(f'{r:.3f}' for r in runs)})",
                flush=True,
            )
    finally:
        from bench.http_load import clear_cache_prefix

        clear_cache_prefix(args.redis_url, prefix)
        metrics_dir.cleanup()


if __name__ == "__main__":
    main()
