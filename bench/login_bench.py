"""Login and session-status under load, against gunicorn in the production settings.

    .venv/bin/python bench/login_bench.py [--clients 16] [--duration 15]

Creates/migrates/seeds its own database (development settings, as ``make run``; the server
then runs ``DJANGO_ENV=production`` as bench/http_load.py does) (``--database-url``, default
``postgres://postgres@127.0.0.1:5432/chefops_bench_accounts``), starts
``gunicorn chefops.wsgi -c gunicorn.conf.py`` on a free port, then measures with N concurrent
clients (threads, one keep-alive ``http.client`` connection each, bounded duration):

* ``POST /api/auth/login`` for the 21 demo users (real Argon2 hashes, m=19 MiB, t=2, p=1):
  requests/s, p50/p95/max latency;
* ``GET /api/auth/session-status`` with a Bearer token: requests/s, p95;
* the peak resident memory (VmRSS) of the gunicorn master and of each worker, sampled every
  100 ms during both phases.

The auth rate limits are switched off for the run (``AUTH_THROTTLE_*_RATE=off``): 16 clients
on one IP would otherwise be refused after 30 logins a minute, which is the limit working, not
the throughput being measured. Target (SPEC §6): login >= 30 req/s with p95 <= 1 s, no memory
blow-up, every worker <= 150 MB, the whole web process inside 512 MB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.http_load import PROXY_HEADERS, bench_cache_prefix, clear_cache_prefix  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/chefops_bench_accounts"
DEMO_PASSWORD = "password123"  # noqa: S105 - the public demo password
DEMO_EMAILS = [
    f"{local}{suffix}@example.com"
    for local in (
        "delicias",
        "sabores",
        "chef",
        "techcorp",
        "finanzas",
        "startup",
        "consultora",
    )
    for suffix in ("", ".manager", ".employee")
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
        help="cache/broker of the web process ('' for the per-process memory cache)",
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of login load")
    parser.add_argument("--status-duration", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=None, help="WEB_CONCURRENCY override")
    parser.add_argument(
        "--malloc-arena-max",
        default=os.environ.get("MALLOC_ARENA_MAX", ""),
        help="MALLOC_ARENA_MAX for gunicorn (glibc); empty = glibc default (8 x cores)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


# --- setup -----------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def server_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    env = {
        # REDIS_URL alone places broker and cache (chefops/redis_layout.py): not a caller's.
        **{k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "CELERY_BROKER_URL"}},
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "GUNICORN_LOGLEVEL": "warning",
        "AUTH_THROTTLE_IP_RATE": "off",
        "AUTH_THROTTLE_EMAIL_RATE": "off",
        "DEMO_SEED_ENABLED": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    env.pop("MALLOC_ARENA_MAX", None)
    if args.malloc_arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
    return env


def web_env(args: argparse.Namespace, port: int, cache_prefix: str) -> dict[str, str]:
    """The web server's environment: the production settings, as bench/http_load.py runs them
    (every request comes with the platform router's X-Forwarded-* headers, PROXY_HEADERS),
    with this benchmark's choices (rate limits off, workers, malloc arenas)."""
    from bench.http_load import server_env as production_env

    if not args.redis_url:
        raise SystemExit("the production settings need Redis (--redis-url)")
    env = production_env(
        args.database_url, port, redis_url=args.redis_url, cache_prefix=cache_prefix
    )
    # The read cache's setting as in production (http_load.py switches it per mode).
    env.pop("READ_CACHE_SECONDS", None)
    env.pop("AUTH_CACHE_SECONDS", None)
    setup = server_env(args, port)
    for name in (
        "AUTH_THROTTLE_IP_RATE",
        "AUTH_THROTTLE_EMAIL_RATE",
        "GUNICORN_LOGLEVEL",
        "WEB_CONCURRENCY",
        "MALLOC_ARENA_MAX",
    ):
        env.pop(name, None)
        if name in setup:
            env[name] = setup[name]
    return env


def manage(env: dict[str, str], *command: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", *command],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit("gunicorn did not answer /api/health in time")


# --- memory ----------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def children_of(pid: int) -> list[int]:
    kids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after the ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry.name))
    return kids


def cpu_seconds(master: int) -> float:
    """User+system CPU time of the gunicorn master and its live workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in [master, *children_of(master)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@dataclass
class MemorySampler:
    master: int
    peak_total_kib: int = 0
    peak_master_kib: int = 0
    peak_worker_kib: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        master = rss_kib(self.master)
        workers = {pid: rss_kib(pid) for pid in children_of(self.master)}
        self.peak_master_kib = max(self.peak_master_kib, master)
        for pid, kib in workers.items():
            self.peak_worker_kib[pid] = max(self.peak_worker_kib.get(pid, 0), kib)
        self.peak_total_kib = max(self.peak_total_kib, master + sum(workers.values()))

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self.sample()


# --- load ------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    seconds: float
    latencies: list[float]
    errors: dict[str, int]

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.requests / self.seconds, 1),
            "p50_ms": round(self.percentile(50) * 1000, 1),
            "p95_ms": round(self.percentile(95) * 1000, 1),
            "max_ms": round(max(self.latencies, default=0) * 1000, 1),
            "errors": self.errors,
        }


Request = Callable[[int, int], tuple[str, str, bytes | None, dict[str, str]]]


def run_phase(name: str, port: int, clients: int, duration: float, make: Request) -> PhaseResult:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        mine_errors: dict[str, int] = {}
        start_gate.wait()
        i = 0
        while time.monotonic() < deadline[0]:
            method, path, body, headers = make(number, i)
            headers = {**PROXY_HEADERS, **headers}
            i += 1
            began = time.monotonic()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                key = type(exc).__name__
                mine_errors[key] = mine_errors.get(key, 0) + 1
                continue
            if status == 200:
                mine.append(time.monotonic() - began)
            else:
                mine_errors[str(status)] = mine_errors.get(str(status), 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for key, count in mine_errors.items():
                errors[key] = errors.get(key, 0) + count

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + duration
    began = time.monotonic()
    start_gate.wait()
    for thread in threads:
        thread.join(timeout=duration + 60)
    return PhaseResult(name, time.monotonic() - began, latencies, errors)


def login_request(number: int, i: int) -> tuple[str, str, bytes | None, dict[str, str]]:
    email = DEMO_EMAILS[(number + i) % len(DEMO_EMAILS)]
    body = json.dumps({"email": email, "password": DEMO_PASSWORD}).encode()
    return "POST", "/api/auth/login", body, {"Content-Type": "application/json"}


def access_token(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/api/auth/login",
        body=json.dumps({"email": DEMO_EMAILS[0], "password": DEMO_PASSWORD}),
        headers={**PROXY_HEADERS, "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    payload = json.loads(response.read())
    if response.status != 200:
        sys.exit(f"login failed: {response.status} {payload}")
    return str(payload["accessToken"])


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url)
    port = free_port()
    setup = server_env(args, port)
    print("migrating and seeding", urlsplit(args.database_url).path.lstrip("/"), "...")
    manage(setup, "migrate", "--noinput")
    manage(setup, "seed_demo")
    cache_prefix = bench_cache_prefix("login")
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "chefops.wsgi", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=web_env(args, port, cache_prefix),
        start_new_session=True,
    )
    sampler = MemorySampler(proc.pid)
    try:
        wait_until_up(port, proc)
        run_phase("health", port, args.clients, 1.0, lambda n, i: ("GET", "/api/health", None, {}))
        sampler.sample()
        before_login = dict(sampler.peak_worker_kib)
        sampler.peak_worker_kib.clear()
        # Warm every worker (imports, first connection) before measuring.
        run_phase("warm-up", port, args.clients, 2.0, login_request)
        sampler.sample()
        idle_total = sampler.peak_total_kib
        watcher = threading.Thread(target=sampler.run, daemon=True)
        watcher.start()
        cpu_before = cpu_seconds(proc.pid)
        login = run_phase("login", port, args.clients, args.duration, login_request)
        login_cpu = cpu_seconds(proc.pid) - cpu_before
        token = access_token(port)
        headers = {"Authorization": f"Bearer {token}"}
        cpu_before = cpu_seconds(proc.pid)
        status = run_phase(
            "session-status",
            port,
            args.clients,
            args.status_duration,
            lambda n, i: ("GET", "/api/auth/session-status", None, headers),
        )
        status_cpu = cpu_seconds(proc.pid) - cpu_before
        sampler.stop.set()
        watcher.join(timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        clear_cache_prefix(args.redis_url, cache_prefix)

    workers = sorted(sampler.peak_worker_kib.values(), reverse=True)
    figures = {
        "clients": args.clients,
        "malloc_arena_max": args.malloc_arena_max or "default",
        "workers": len(workers),
        "login": {
            **login.summary(),
            "server_cpu_ms_per_request": round(login_cpu / max(1, login.requests) * 1000, 1),
        },
        "session_status": {
            **status.summary(),
            "server_cpu_ms_per_request": round(status_cpu / max(1, status.requests) * 1000, 2),
        },
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "memory_mib": {
            "workers_before_any_login": [
                round(kib / 1024, 1) for kib in sorted(before_login.values(), reverse=True)
            ],
            "total_after_warmup": round(idle_total / 1024, 1),
            "peak_total": round(sampler.peak_total_kib / 1024, 1),
            "peak_master": round(sampler.peak_master_kib / 1024, 1),
            "peak_per_worker": [round(kib / 1024, 1) for kib in workers],
        },
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    lg = figures["login"]
    ok = (
        lg["requests_per_second"] >= 30
        and lg["p95_ms"] <= 1000
        and not lg["errors"]
        and sampler.peak_total_kib <= 512 * 1024
    )
    print(
        f"\nlogin {lg['requests_per_second']} req/s, p95 {lg['p95_ms']} ms; "
        f"session-status {figures['session_status']['requests_per_second']} req/s; "
        f"peak RSS {figures['memory_mib']['peak_total']} MiB "
        f"(workers {figures['memory_mib']['peak_per_worker']}) -> {'OK' if ok else 'BELOW TARGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
