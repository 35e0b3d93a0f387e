"""Many keep-alive clients against the web process in its production configuration (issue #13).

    .venv/bin/python bench/keepalive_bench.py [--duration 60] [--connections 16,64,256]
        [--configs current,previous] [--endpoints health,contracts] [--db-url …] [--redis-url …]

For each serving configuration, back to back on the same machine: start ``gunicorn chefops.wsgi
-c gunicorn.conf.py`` with ``DJANGO_ENV=production`` (its secrets generated for the run, plain
HTTP, the read cache on Redis under a key prefix of this run, removed at the end; the Redis
database is never flushed), then per endpoint and number of connections drive that many
keep-alive connections with wrk (``-t2 --timeout 10s``) for ``--duration`` seconds. Meanwhile a
probe opens a new connection to ``/api/health`` every 2 s with a 5 s timeout, as Docker's
HEALTHCHECK does, and the workers' connections and RSS are sampled from /proc.

Configurations: ``current`` is gunicorn.conf.py as it is (chefops/serving.py's balanced
worker); ``previous`` is the serving model before issue #13 (gunicorn's own gthread worker,
``worker_connections`` = threads + 2, recycling every 2000 ± 200 requests), set through
``GUNICORN_CMD_ARGS``.

Reported per run: requests, req/s, p50/p95/p99/max, wrk's timeouts and socket errors, non-2xx
answers, health probes that failed, connections per worker, peak worker RSS, and the machine's
load average. Results: stdout and bench/results/keepalive.md. Exits non-zero if the ``current``
configuration had a timeout, a socket error, a non-2xx answer or a failed health probe. Data:
the HTTP benchmark's database (``manage.py bench_data --if-missing``; the contract list is the
first caterer's 100 contracts). Only 127.0.0.1 is contacted; gunicorn is always stopped.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.http_load import (
    DEFAULT_DB,
    HOST,
    PYTHON,
    ROOT,
    Result,
    bench_cache_prefix,
    clear_cache_prefix,
    django_setup,
    ensure_database,
    load_wrk,
    run,
    server_env,
    write_wrk_script,
    wrk_version,
)

if TYPE_CHECKING:
    from chefops.testing.gunicorn import Gunicorn

WRK_TIMEOUT_S = 10.0
PROBE_INTERVAL_S = 2.0  # Docker's HEALTHCHECK polls every 30 s; more samples here
PROBE_TIMEOUT_S = 5.0  # the Dockerfile's HEALTHCHECK --timeout
BOOTING = "Booting worker with pid"  # gunicorn's log line for every worker it starts
CONFIGS = {
    "current": "",
    # The serving model before issue #13: gunicorn's gthread worker, a low per-worker cap, and
    # recycling every 2000 ± 200 requests (left out with --no-recycling).
    "previous": "--worker-class gthread --worker-connections {previous_cap}{recycling}",
}


@dataclass
class Run:
    config: str
    endpoint: str
    connections: int
    result: Result
    load_before: float
    load_after: float
    probes: list[float | None] = field(default_factory=list)  # ms, None = failed
    spread: list[int] = field(default_factory=list)  # connections per worker, mid-run
    peak_rss_mb: float = 0.0  # the largest worker RSS seen during the run
    peak_total_mb: float = 0.0  # the largest master + workers RSS seen during the run
    restarts: int = 0  # workers booted during the run (recycling, or a crash)

    @property
    def timeouts(self) -> int:
        return int(self.result.raw.get("timeout", 0))

    @property
    def socket_errors(self) -> int:
        return sum(int(self.result.raw.get(k, 0)) for k in ("connect", "read", "write"))

    @property
    def non_2xx(self) -> int:
        return int(self.result.raw.get("non2xx", 0))

    @property
    def failed_probes(self) -> int:
        return sum(1 for probe in self.probes if probe is None)

    @property
    def clean(self) -> bool:
        return not (self.timeouts or self.socket_errors or self.non_2xx or self.failed_probes)


def config_args(config: str, args: argparse.Namespace) -> str:
    """GUNICORN_CMD_ARGS of a configuration ('' for gunicorn.conf.py as it is)."""
    recycling = "" if args.no_recycling else " --max-requests 2000 --max-requests-jitter 200"
    return CONFIGS[config].format(previous_cap=args.previous_cap, recycling=recycling)


def production_env(args: argparse.Namespace, prefix: str) -> dict[str, str]:
    """The server's environment: DJANGO_ENV=production with every secret it requires."""
    env = server_env(
        args.db_url, 0, redis_url=args.redis_url, read_cache_seconds=300, cache_prefix=prefix
    )
    env.update(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": args.secret_key,
            "ALLOWED_HOSTS": f"{HOST},localhost",
            "METRICS_TOKEN": secrets.token_urlsafe(32),
            "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback (TLS ends at the proxy)
            "NO_REVERSE_PROXY": "true",  # the clients connect directly
            "LOG_JSON": "false",
            "ALLOW_LOCAL_ARCHIVES": "true",  # no archive or backup is written here
        }
    )
    # Production's worker recycling stays on unless asked: a recycled worker's clients must
    # find another worker too.
    if args.no_recycling:
        env["GUNICORN_MAX_REQUESTS"] = "0"
    else:
        env.pop("GUNICORN_MAX_REQUESTS", None)
    for name in ("GUNICORN_CMD_ARGS", "GUNICORN_WORKER_CONNECTIONS", "PORT", "NUM_PROXIES"):
        env.pop(name, None)
    return env


def caterer_token(args: argparse.Namespace) -> str:
    """An access token of a new session of the first caterer, signed with the server's key
    (this process runs Django in development mode against the same database)."""
    env = server_env(args.db_url, 0)
    os.environ["SECRET_KEY"] = args.secret_key
    os.environ.pop("JWT_SECRET", None)
    django_setup(env)
    from chefops.testing.cast import session_access_token
    from companies.models import User
    from servicedays.management.commands.bench_data import catering_email

    user = User.objects.select_related("company").get(email=catering_email(0))
    return session_access_token(user)  # access tokens live only with their session


def proc_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def connections_per_worker(master: int, port: int) -> list[int]:
    """Established connections to ``port`` that each worker holds (sockets in /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    counts = []
    for worker in proc_children(master):
        held = 0
        try:
            fds = list(Path(f"/proc/{worker}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts.append(held)
    return sorted(counts, reverse=True)


class Sampler(threading.Thread):
    """During a run: the health probe (new connection each time, like Docker's), RSS every
    second, and the connections per worker once, half-way."""

    def __init__(self, server: Gunicorn, port: int, duration: float) -> None:
        super().__init__(daemon=True)
        self.server, self.port, self.duration = server, port, duration
        self.stop = threading.Event()
        self.probes: list[float | None] = []
        self.spread: list[int] = []
        self.peak_rss = 0.0
        self.peak_total = 0.0
        self._probe_thread = threading.Thread(target=self._probe_loop, daemon=True)

    def _probe_loop(self) -> None:
        while not self.stop.wait(PROBE_INTERVAL_S):
            began = time.perf_counter()
            conn = http.client.HTTPConnection(HOST, self.port, timeout=PROBE_TIMEOUT_S)
            try:
                conn.request("GET", "/api/health")
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            finally:
                conn.close()
            self.probes.append((time.perf_counter() - began) * 1000 if ok else None)

    def run(self) -> None:
        self._probe_thread.start()
        master = self.server.proc.pid
        half_way = time.monotonic() + self.duration / 2
        while not self.stop.wait(1.0):
            workers = proc_children(master)
            sizes = [rss_mb(pid) for pid in workers]
            self.peak_rss = max([self.peak_rss, *sizes])
            self.peak_total = max(self.peak_total, rss_mb(master) + sum(sizes))
            if not self.spread and time.monotonic() >= half_way:
                self.spread = connections_per_worker(master, self.port)
        self._probe_thread.join(timeout=PROBE_TIMEOUT_S + 5)


def measure(
    server: Gunicorn,
    port: int,
    config: str,
    endpoint: str,
    script: Path,
    connections: int,
    args: argparse.Namespace,
) -> Run:
    wrk = shutil.which("wrk") or "wrk"
    sampler = Sampler(server, port, args.duration)
    booted_before = server.log().count(BOOTING)
    load_before = os.getloadavg()[0]
    sampler.start()
    try:
        result = load_wrk(
            wrk,
            script,
            port,
            endpoint,
            endpoint,
            concurrency=connections,
            duration=args.duration,
            timeout_s=WRK_TIMEOUT_S,
        )
    finally:
        sampler.stop.set()
        sampler.join(timeout=30)
    run_ = Run(
        config=config,
        endpoint=endpoint,
        connections=connections,
        result=result,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        probes=sampler.probes,
        spread=sampler.spread,
        peak_rss_mb=sampler.peak_rss,
        peak_total_mb=sampler.peak_total,
        restarts=server.log().count(BOOTING) - booted_before,
    )
    print(line(run_), flush=True)
    return run_


def probe_summary(run_: Run) -> str:
    answered = [p for p in run_.probes if p is not None]
    worst = f", max {max(answered):.0f} ms" if answered else ""
    return f"{run_.failed_probes} of {len(run_.probes)} failed{worst}"


def line(run_: Run) -> str:
    r = run_.result
    return (
        f"{run_.config:8} {run_.endpoint:9} c={run_.connections:<4} {r.count} req, "
        f"{r.rps:.0f} req/s, p50 {r.pct(50):.1f} / p95 {r.pct(95):.1f} / p99 {r.pct(99):.1f} / "
        f"max {r.raw.get('max_us', 0) / 1000:.0f} ms, timeouts {run_.timeouts}, socket errors "
        f"{run_.socket_errors}, non-2xx {run_.non_2xx}, health probes {probe_summary(run_)}, "
        f"per worker {'/'.join(map(str, run_.spread)) or '-'}, {run_.restarts} restarts, "
        f"peak worker RSS "
        f"{run_.peak_rss_mb:.0f} MB, load {run_.load_before:.1f}→{run_.load_after:.1f}"
    )


def markdown(runs: list[Run], args: argparse.Namespace, started: datetime, wrk: str) -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# Keep-alive benchmark (bench/keepalive_bench.py)",
        "",
        f"- date: {started.isoformat(timespec='seconds')} to "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}; wrk, gunicorn, PostgreSQL and Redis on the same "
        "cores",
        f"- load driver: wrk {wrk} -t2 --timeout {WRK_TIMEOUT_S:g}s, {args.duration:g} s per run, "
        "keep-alive connections; health probe: a new connection every "
        f"{PROBE_INTERVAL_S:g} s, {PROBE_TIMEOUT_S:g} s timeout",
        "- server: DJANGO_ENV=production, WEB_CONCURRENCY="
        f"{os.environ.get('WEB_CONCURRENCY', '3')}, GUNICORN_THREADS="
        f"{os.environ.get('GUNICORN_THREADS', '4')}, read cache on (Redis), worker recycling "
        + ("off" if args.no_recycling else "on (gunicorn.conf.py's max_requests)"),
        "- configurations: current = gunicorn.conf.py (chefops/serving.py's worker); previous "
        f"= `GUNICORN_CMD_ARGS='{config_args('previous', args)}'`",
        "",
        "| config | endpoint | conns | requests | req/s | p50 ms | p95 ms | p99 ms | max ms "
        "| timeouts | socket errors | non-2xx | health probes failed (max ms) | conns per worker "
        "| worker restarts | peak worker RSS MB | load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|",
    ]
    for run_ in runs:
        r = run_.result
        answered = [p for p in run_.probes if p is not None]
        lines.append(
            f"| {run_.config} | {run_.endpoint} | {run_.connections} | {r.count} | {r.rps:.0f} | "
            f"{r.pct(50):.1f} | {r.pct(95):.1f} | {r.pct(99):.1f} | "
            f"{r.raw.get('max_us', 0) / 1000:.0f} | {run_.timeouts} | {run_.socket_errors} | "
            f"{run_.non_2xx} | {run_.failed_probes} of {len(run_.probes)} "
            f"({max(answered, default=0):.0f}) | {'/'.join(map(str, run_.spread)) or '-'} | "
            f"{run_.restarts} | {run_.peak_rss_mb:.0f} | "
            f"{run_.load_before:.1f} → {run_.load_after:.1f} |"
        )
    totals = [run_.peak_total_mb for run_ in runs]
    if totals:
        lines += ["", f"Peak RSS of master + workers during any run: {max(totals):.0f} MB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="Redis the server uses (its keys under a prefix of this run; never flushed)",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--connections", default="16,64,256", help="comma-separated levels")
    parser.add_argument("--configs", default="current,previous", help="comma-separated, in order")
    parser.add_argument("--endpoints", default="health,contracts", help="health, contracts")
    parser.add_argument(
        "--previous-cap",
        type=int,
        default=int(os.environ.get("GUNICORN_THREADS", "4")) + 2,
        help="worker_connections of the 'previous' configuration (threads + 2)",
    )
    parser.add_argument(
        "--no-recycling", action="store_true", help="GUNICORN_MAX_REQUESTS=0 for the server"
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "keepalive.md"))
    args = parser.parse_args()
    if "bench" not in args.db_url.rsplit("/", 1)[1]:
        raise SystemExit("the database name must contain 'bench'")
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is not on PATH (bash bin/ensure-wrk.sh installs it)")
    configs = [c for c in args.configs.split(",") if c]
    if unknown := set(configs) - set(CONFIGS):
        raise SystemExit(f"unknown configurations: {', '.join(sorted(unknown))}")
    levels = [int(n) for n in args.connections.split(",") if n]
    args.secret_key = secrets.token_urlsafe(48)  # ≥ 50 characters, as production requires

    setup_env = server_env(args.db_url, 0)
    ensure_database(args.db_url)
    print("migrating…", flush=True)
    run([PYTHON, "manage.py", "migrate", "--noinput"], setup_env)
    print(run([PYTHON, "manage.py", "bench_data", "--if-missing"], setup_env, timeout=900))
    endpoints = {
        "health": (["/api/health"], None),
        "contracts": (["/api/contracts?limit=100"], caterer_token(args)),
    }
    chosen = [e for e in args.endpoints.split(",") if e]
    # Imported after caterer_token(): importing the chefops package loads the Django settings.
    from chefops.testing.gunicorn import start_gunicorn, wait_until_serving

    started = datetime.now(UTC)
    runs: list[Run] = []
    scripts = tempfile.TemporaryDirectory(prefix="chefops-keepalive-")
    try:
        for config in configs:
            prefix = bench_cache_prefix("keepalive")
            env = production_env(args, prefix)
            if extra := config_args(config, args):
                env["GUNICORN_CMD_ARGS"] = extra
            print(f"--- {config}: {extra or 'gunicorn.conf.py'}", flush=True)
            server = start_gunicorn(env, Path(scripts.name) / config)
            try:
                wait_until_serving(server, workers=int(env.get("WEB_CONCURRENCY", "3")))
                port = server.port()
                assert port is not None
                for index, name in enumerate(chosen):
                    paths, token = endpoints[name]
                    script = write_wrk_script(Path(scripts.name), index, paths, token, 2)
                    # warm-up: database connections, the principal and read caches
                    load_wrk(wrk, script, port, name, paths[0], concurrency=16, duration=2)
                    runs += [
                        measure(server, port, config, name, script, level, args) for level in levels
                    ]
            finally:
                server.stop()
                clear_cache_prefix(args.redis_url, prefix)
    finally:
        scripts.cleanup()

    report = markdown(runs, args, started, wrk_version(wrk))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print()
    print(report)
    dirty = [run_ for run_ in runs if run_.config == "current" and not run_.clean]
    if dirty:
        raise SystemExit(
            "current configuration: "
            + "; ".join(f"{r.endpoint} c={r.connections} not clean" for r in dirty)
        )


if __name__ == "__main__":
    main()
