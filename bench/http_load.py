"""HTTP load benchmark of the read paths (SPEC §6, issue #18) against gunicorn on PostgreSQL.

    .venv/bin/python bench/http_load.py [--duration 10] [--concurrency 16] [--port 8765]
        [--driver auto|wrk|python]

Steps: create/migrate the bench database (DATABASE_URL, default chefops_bench_http), load the
data set with `manage.py bench_data --if-missing`, time the service-day generation job for every
ACTIVE contract (8-day window, on an emptied window, then the idempotent re-run), start
`gunicorn chefops.wsgi -c gunicorn.conf.py` in the production settings (DJANGO_ENV=production,
behind one proxy: every request says `X-Forwarded-Proto: https`), then per endpoint drive
`--concurrency` keep-alive connections for `--duration` seconds (after a 1 s warm-up) and report
requests/s, p50/p95/p99, the workers' CPU ms per request (/proc/<pid>/stat before and after) and
the web process's memory (master + workers, RSS and PSS). The same run serves a bare WSGI hello
app (bench/bare_wsgi.py) under the same gunicorn configuration: /api/health is judged against
it. Exits non-zero when a target of issue #18 is missed. Load drivers: `wrk` (C, 2 threads, a
generated Lua script per endpoint; the default when `wrk` is on PATH, see bin/ensure-wrk.sh) or
`python` (one thread per connection with http.client, bounded by `--max-requests`; it competes
with the server for the CPU and inflates latencies). Results: stdout and bench/results/http.md.
Only 127.0.0.1 is ever contacted; gunicorn is always stopped at the end.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/chefops_bench_http"
HOST = "127.0.0.1"
TARGET_P95_MS = 50.0
# Issue #18: /api/health at half a bare WSGI app's throughput or more, in the same run.
TARGET_HEALTH_OF_BARE = 0.5
# Every data endpoint, read cache on.
TARGET_CACHED_RPS = 1500.0
# Read cache off: 3 x what the original backend answers on the same data (issue #18's table).
TARGET_UNCACHED_RPS = {
    "contract list (caterer, 100 contracts)": 80.0,
    "service-day range (30 days)": 750.0,
    "weekly report": 530.0,
    "finance metrics": 155.0,
}
# The web process (master + workers), after a run.
TARGET_WEB_MEMORY_MIB = 300.0
BARE_NAME = "bare WSGI hello (reference)"
# The checkout gunicorn serves (--code-root: an export of another commit, for a baseline).
SERVED_ROOT = [ROOT]
# The production settings behind one proxy (NUM_PROXIES=1), as the platform's router sends them.
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
METRICS_TOKEN = "bench-metrics-token"  # noqa: S105 - a local benchmark server's
# The tokens the bench process signs (development settings) must verify on the server.
BENCH_SECRET_KEY = "bench-secret-" + "k" * 60
WRK_MAX_THREADS = 2
WRK_RESULT_MARK = "chefops-wrk-result "


@dataclass
class Result:
    name: str
    path_example: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0
    note: str = ""
    server_cpu_ms: float = float("nan")  # gunicorn worker CPU per request
    cache_hits: float | None = None  # read-cache lookups during the run (from /metrics)
    cache_misses: float | None = None
    writes: int = 0  # confirmations the background writer made during the run
    p95_runs: list[float] = field(default_factory=list)  # every repetition's p95 (--repeat)
    target: str = ""  # the issue #18 target and its verdict (judge())
    met: bool = True
    raw: dict[str, float] = field(default_factory=dict)  # wrk's figures as reported (load_wrk)

    def hit_ratio(self) -> str:
        if self.cache_hits is None or self.cache_misses is None:
            return "-"
        lookups = self.cache_hits + self.cache_misses
        return f"{100 * self.cache_hits / lookups:.1f} %" if lookups else "-"

    # Set by drivers that report aggregates instead of raw latencies (wrk): the number of
    # completed requests and precomputed percentiles in ms ({50: …, 95: …, 99: …}).
    requests: int | None = None
    percentiles_ms: dict[float, float] = field(default_factory=dict)
    error_detail: str = ""

    @property
    def count(self) -> int:
        return self.requests if self.requests is not None else len(self.latencies_ms)

    def pct(self, p: float) -> float:
        if self.percentiles_ms:
            return self.percentiles_ms.get(p, float("nan"))
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    @property
    def rps(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0


def server_env(
    db_url: str,
    port: int,
    *,
    redis_url: str = "",
    read_cache_seconds: int = 0,
    cache_prefix: str = "",
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "PORT": str(port),
            # The production settings, with what they require (chefops/settings.py).
            "DJANGO_ENV": "production",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "ALLOWED_HOSTS": f"localhost,{HOST}",
            "METRICS_TOKEN": METRICS_TOKEN,
            "NUM_PROXIES": "1",
            "ALLOW_LOCAL_ARCHIVES": "true",
            "LOG_LEVEL": "WARNING",
            "ACCESS_TOKEN_MINUTES": "240",
            "DEMO_SEED_ENABLED": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
            # Worker recycling (every ~2000 requests in production) would restart workers
            # every few seconds at benchmark rates and measure start-up, not requests.
            "GUNICORN_MAX_REQUESTS": "0",
        }
    )
    env.pop("JWT_SECRET", None)  # tokens are signed with SECRET_KEY on both sides
    # Production runs with Redis (cache, throttles, broker); the read cache needs it. The
    # broker in REDIS_URL's database, the cache in the next (chefops/redis_layout.py).
    for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    if redis_url:
        env["REDIS_URL"] = redis_url
        # Keys of this run only: the Redis database may be shared (another benchmark, a
        # developer's server), so it is never flushed; see cache_prefix().
        env["CACHE_KEY_PREFIX"] = cache_prefix or bench_cache_prefix("http")
    else:
        raise SystemExit("the production settings need Redis (--redis-url)")
    env["READ_CACHE_SECONDS"] = str(read_cache_seconds)
    # The principal cache (companies/principals.py) is on whenever Redis is, as in production:
    # the "read cache off" run measures reads that all miss the read cache.
    env["AUTH_CACHE_SECONDS"] = "300" if redis_url else "0"
    return env


def setup_env(db_url: str) -> dict[str, str]:
    """Migrating, loading the data and preparing tokens: development settings, no Redis."""
    env = dict(os.environ)
    for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    env.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_ENV": "development",
            "DEBUG": "false",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "LOG_LEVEL": "WARNING",
            "ACCESS_TOKEN_MINUTES": "240",
            "DEMO_SEED_ENABLED": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.pop("JWT_SECRET", None)
    return env


def bench_cache_prefix(label: str) -> str:
    """A Django cache key prefix no other process uses: a fresh one starts a cold cache, and
    clear_cache_prefix() removes exactly its keys (never FLUSHDB on a shared database)."""
    return f"chefops-bench-{label}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def clear_cache_prefix(redis_url: str, prefix: str) -> None:
    """Delete the keys the server wrote under ``prefix`` in the cache's database (derived from
    ``redis_url`` as the server does): SCAN + UNLINK of that prefix only, as the cache's
    clear() does."""
    sys.path.insert(0, str(ROOT))
    import redis

    from chefops.cache import delete_prefix
    from chefops.redis_layout import layout

    client = redis.Redis.from_url(layout(redis_url)[0])
    try:
        delete_prefix(client, prefix)
    finally:
        client.close()


def run(cmd: list[str], env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return done.stdout.strip()


def ensure_database(db_url: str) -> None:
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    admin_url = db_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(env: dict[str, str]) -> None:
    for key in (
        "DATABASE_URL",
        "DJANGO_ENV",
        "DEBUG",
        "SECRET_KEY",
        "LOG_LEVEL",
        "ACCESS_TOKEN_MINUTES",
    ):
        os.environ[key] = env[key]
    os.environ.pop("JWT_SECRET", None)
    for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chefops.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(env: dict[str, str]) -> dict[str, Any]:
    """Tokens, ids and the generation timing, computed in this process through Django."""
    from django.db import connection

    from chefops.testing.cast import session_access_token
    from companies.models import User
    from contracts.models import Contract
    from servicedays import jobs, rules
    from servicedays.management.commands.bench_data import catering_email, client_email
    from servicedays.models import ServiceDay

    client_user = User.objects.select_related("company").get(email=client_email(0))
    caterer_user = User.objects.select_related("company").get(email=catering_email(0))
    client_contracts = [
        str(pk)
        for pk in Contract.objects.filter(client_company=client_user.company).values_list(
            "pk", flat=True
        )
    ]
    today = datetime.now(UTC).date()

    # Generation job: empty today's window first so the timed run really inserts.
    window = ServiceDay.objects.filter(service_date__gte=today)
    window.delete()
    first = jobs.service_days_generate_upcoming()
    second = jobs.service_days_generate_upcoming()
    # As autovacuum does after a bulk change: fresh statistics and visibility map (index-only
    # scans of the finance aggregates and of the list's weekdays would otherwise visit the
    # heap for every row).
    connection.close()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM (ANALYZE) servicedays_serviceday, contracts_contractweekday")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM servicedays_serviceday")
        service_days = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM companies_company")
        companies = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM contracts_contract")
        contracts = cursor.fetchone()[0]
    # Days the client can still confirm (24 h notice): the background writer's supply.
    writable = [
        (str(day_id), minimum)
        for day_id, minimum in ServiceDay.objects.filter(
            contract__client_company=client_user.company,
            expected_quantity__isnull=True,
            service_date__gte=today + timedelta(days=2),
        )
        .order_by("service_date", "id")
        .values_list("id", "contract__min_daily_quantity")
    ]
    connection.close()
    monday = rules.monday_of_week(today)
    return {
        "client_token": session_access_token(client_user),
        "caterer_token": session_access_token(caterer_user),
        "client_contracts": client_contracts,
        "writable_days": writable,
        "caterer_contracts": Contract.objects.filter(catering_company=caterer_user.company).count(),
        "from": (today - timedelta(days=29)).isoformat(),
        "to": today.isoformat(),
        "monday": (monday - timedelta(days=7)).isoformat(),
        "generation": first,
        "generation_rerun": second,
        "data": {"companies": companies, "contracts": contracts, "service_days": service_days},
    }


def data_endpoints(ctx: dict[str, Any]) -> list[tuple[str, list[str], str | None]]:
    """The data endpoints of issue #18 as (name, paths, token), from prepare()'s ids, dates and
    tokens: the caterer's contract list, the client's range and report over each of its
    contracts, and finance metrics for the client and for the caterer."""
    client_auth, caterer_auth = ctx["client_token"], ctx["caterer_token"]
    contracts = ctx["client_contracts"]
    return [
        ("contract list (caterer, 100 contracts)", ["/api/contracts?limit=100"], caterer_auth),
        (
            "service-day range (30 days)",
            [
                f"/api/contracts/{c}/service-days?from={ctx['from']}&to={ctx['to']}"
                for c in contracts
            ],
            client_auth,
        ),
        (
            "weekly report",
            [f"/api/contracts/{c}/reports/weekly?weekStart={ctx['monday']}" for c in contracts],
            client_auth,
        ),
        ("finance metrics", ["/api/contracts/finance-metrics"], client_auth),
        (
            "finance metrics (caterer, 100 contracts)",
            ["/api/contracts/finance-metrics"],
            caterer_auth,
        ),
    ]


def start_gunicorn(
    env: dict[str, str], port: int, app: str = "chefops.wsgi"
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [GUNICORN, app, "-c", "gunicorn.conf.py", "--bind", f"{HOST}:{port}"],
        cwd=SERVED_ROOT[0],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited during start-up")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(proc)
    raise SystemExit("gunicorn did not answer /api/health within 60 s")


def stop_gunicorn(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # the master stops its workers
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def worker_pids(proc: subprocess.Popen[bytes]) -> list[str]:
    try:
        return Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        return []


def workers_cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) used so far by gunicorn's workers, from /proc."""
    total = 0
    for pid in worker_pids(proc):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _kib(path: str, key: str) -> float:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def worker_rss_mb(proc: subprocess.Popen[bytes]) -> list[float]:
    """Resident memory of gunicorn's workers (children of the master), from /proc."""
    return [_kib(f"/proc/{pid}/status", "VmRSS:") for pid in worker_pids(proc)]


@dataclass
class WebMemory:
    """The web process after a run, MiB: RSS of the master and of each worker, and the sum of
    their PSS (shared pages divided among the processes sharing them: what they cost the
    container together)."""

    label: str
    master_rss: float
    workers_rss: list[float]
    pss_total: float

    @property
    def rss_total(self) -> float:
        return self.master_rss + sum(self.workers_rss)


def web_memory(proc: subprocess.Popen[bytes], label: str) -> WebMemory:
    pids = [str(proc.pid), *worker_pids(proc)]
    return WebMemory(
        label=label,
        master_rss=_kib(f"/proc/{proc.pid}/status", "VmRSS:"),
        workers_rss=worker_rss_mb(proc),
        pss_total=sum(_kib(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in pids),
    )


def load(
    port: int,
    name: str,
    paths: list[str],
    token: str | None,
    *,
    concurrency: int,
    duration: float,
    max_requests: int,
) -> Result:
    result = Result(name=name, path_example=paths[0])
    headers = {**PROXY_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    issued = [0]

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        latencies: list[float] = []
        errors = 0
        n = offset
        try:
            while time.monotonic() < stop_at:
                with lock:
                    if issued[0] >= max_requests:
                        break
                    issued[0] += 1
                path = paths[n % len(paths)]
                n += concurrency
                began = time.perf_counter()
                try:
                    conn.request("GET", path, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = 200 <= response.status < 300
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=30)
                latencies.append((time.perf_counter() - began) * 1000)
                errors += 0 if ok else 1
        finally:
            conn.close()
            with lock:
                result.latencies_ms.extend(latencies)
                result.errors += errors

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 60)
    result.elapsed_s = time.monotonic() - began
    return result


def wrk_version(exe: str) -> str:
    """`wrk -v` prints e.g. "wrk debian/4.1.0-3+b2 [epoll] …" (and exits 1)."""
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"wrk \S*?(\d+(?:\.\d+)+)", done.stdout + done.stderr)
    return found.group(1) if found else "?"


def wrk_threads(concurrency: int) -> int:
    return max(1, min(WRK_MAX_THREADS, concurrency))


def lua_string(value: str) -> str:
    """A Lua string literal; every byte outside printable ASCII becomes a decimal escape."""
    out = []
    for byte in value.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


WRK_SCRIPT = """-- generated by bench/http_load.py for one endpoint; removed after the run
local paths = {%(paths)s}
local step = %(threads)d
%(auth)s
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- each thread walks the paths round-robin from its own offset
  prepared, n, non2xx = {}, id, 0
  for i, path in ipairs(paths) do
    prepared[i] = wrk.format("GET", path)
  end
end

function request()
  local req = prepared[(n %% #prepared) + 1]
  n = n + step
  return req
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    "%(mark)s{\\"requests\\": %%.0f, \\"duration_us\\": %%.0f, \\"non2xx\\": %%.0f, "
      .. "\\"connect\\": %%.0f, \\"read\\": %%.0f, \\"write\\": %%.0f, \\"timeout\\": %%.0f, "
      .. "\\"p50_us\\": %%.0f, \\"p95_us\\": %%.0f, \\"p99_us\\": %%.0f, \\"max_us\\": %%.0f}\\n",
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def write_wrk_script(
    directory: Path, index: int, paths: list[str], token: str | None, concurrency: int
) -> Path:
    headers = {**PROXY_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    auth = "\n".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
    script = directory / f"endpoint-{index}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "paths": ", ".join(lua_string(p) for p in paths),
            "threads": wrk_threads(concurrency),
            "auth": auth,
            "mark": WRK_RESULT_MARK,
        }
    )
    return script


def load_wrk(
    exe: str,
    script: Path,
    port: int,
    name: str,
    path_example: str,
    *,
    concurrency: int,
    duration: float,
    timeout_s: float | None = None,
) -> Result:
    """One wrk run; wrk takes whole seconds and has no request cap (it keeps a histogram).
    ``timeout_s``: a request unanswered this long counts as a timeout (wrk's default: 2 s)."""
    seconds = max(1, round(duration))
    cmd = [
        exe,
        f"-t{wrk_threads(concurrency)}",
        f"-c{concurrency}",
        f"-d{seconds}s",
        *([f"--timeout={timeout_s:g}s"] if timeout_s else []),
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{port}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(WRK_RESULT_MARK)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"wrk failed ({done.returncode}): {' '.join(cmd)}")
    data = json.loads(lines[-1][len(WRK_RESULT_MARK) :])
    sockets = {k: int(data[k]) for k in ("connect", "read", "write", "timeout")}
    detail = ", ".join(
        f"{v} {k}" for k, v in {"non-2xx": int(data["non2xx"]), **sockets}.items() if v
    )
    return Result(
        name=name,
        path_example=path_example,
        errors=int(data["non2xx"]) + sum(sockets.values()),
        elapsed_s=data["duration_us"] / 1e6,
        requests=int(data["requests"]),
        percentiles_ms={p: data[f"p{p}_us"] / 1000 for p in (50, 95, 99)},
        error_detail=detail,
        raw=data,
    )


def probe(port: int, path: str, token: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("GET", path, headers={**PROXY_HEADERS, "Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read().decode(errors="replace")
    conn.close()
    return response.status, body


def judge(results: list[Result]) -> None:
    """Set each result's target of issue #18 and whether it was met."""
    bare: Result | None = None
    for r in results:
        if r.name.startswith(BARE_NAME):
            # the reference run just before each mode's server: health is judged against it
            bare = None if r.note else r
            r.target = "reference"
            continue
        if r.note:
            r.target = "-"
            continue
        checks: list[tuple[str, bool]] = []
        if r.name.startswith("health"):
            if bare is None:
                checks.append(("≥ 50 % of bare WSGI: no bare run", False))
            else:
                share = r.rps / bare.rps if bare.rps else 0.0
                checks.append(
                    (f"{100 * share:.0f} % of bare WSGI (≥ 50 %)", share >= TARGET_HEALTH_OF_BARE)
                )
        else:
            base = r.name.split(" [", 1)[0]
            checks.append((f"p95 ≤ {TARGET_P95_MS:.0f} ms", r.pct(95) <= TARGET_P95_MS))
            if r.name.endswith("[read cache on]"):
                checks.append((f"≥ {TARGET_CACHED_RPS:,.0f} req/s", r.rps >= TARGET_CACHED_RPS))
            elif base in TARGET_UNCACHED_RPS:
                floor = TARGET_UNCACHED_RPS[base]
                checks.append((f"≥ {floor:,.0f} req/s", r.rps >= floor))
        r.met = all(ok for _, ok in checks)
        r.target = ", ".join(f"{text}: {'ok' if ok else 'MISSED'}" for text, ok in checks)


def markdown(results: list[Result], ctx: dict[str, Any], args: argparse.Namespace) -> str:
    gen, rerun = ctx["generation"], ctx["generation_rerun"]
    data = ctx["data"]
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# HTTP benchmark (bench/http_load.py)",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}; load driver on the same machine",
        f"- load driver: {ctx['driver_label']}",
        "- cache: Redis (local); the principal cache (AUTH_CACHE_SECONDS=300) is on in both "
        "modes. [read cache off] rows: READ_CACHE_SECONDS=0, every response computed. "
        "[read cache on] rows: READ_CACHE_SECONDS=300 (the default is 60; no mode lasts a "
        "minute), cold at the "
        "start of each mode; during the client's endpoints the client confirms "
        f"{args.writes_per_second:g} service days per second through the API (each write "
        "invalidates that contract's range and report and the client's finance metrics); "
        "'cache hits' is the share of lookups answered from the cache "
        "(chefops_read_cache_lookups_total)",
        f"- data: {data['companies']} companies, {data['contracts']} contracts, "
        f"{data['service_days']} service days (PostgreSQL)",
        "- settings: DJANGO_ENV=production (SECRET_KEY, ALLOWED_HOSTS, METRICS_TOKEN, "
        "REDIS_URL, NUM_PROXIES=1; every request with X-Forwarded-Proto: https and "
        "X-Forwarded-For, as behind the platform's router)",
        f"- server: gunicorn chefops.wsgi -c gunicorn.conf.py (WEB_CONCURRENCY="
        f"{os.environ.get('WEB_CONCURRENCY', '3')}, GUNICORN_THREADS="
        f"{os.environ.get('GUNICORN_THREADS', '4')}, GUNICORN_WORKER_CONNECTIONS="
        f"{os.environ.get('GUNICORN_WORKER_CONNECTIONS', '500')}, no worker recycling); "
        "reference: gunicorn bench.bare_wsgi with the same configuration on the next port, its "
        "runs alternating with /api/health's",
        f"- load: {args.concurrency} concurrent keep-alive connections, {args.repeat} runs of "
        f"{args.duration:.0f} s "
        f"per endpoint"
        + (f" (at most {args.max_requests} requests)" if ctx["driver"] == "python" else ""),
        f"- machine load average (1 min) before/after: {ctx['load_before']:.1f} / "
        f"{os.getloadavg()[0]:.1f} (other work on the machine skews the figures)",
        "",
        "| endpoint | requests | errors | req/s | p50 ms | p95 ms | p99 ms | web CPU ms/req "
        "| cache hits | writes | p95 of each run | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        if r.note:
            lines.append(f"| {r.name} | - | - | - | - | - | - | - | - | - | - | {r.note} |")
            continue
        target = r.target
        lines.append(
            f"| {r.name} | {r.count} | {r.errors} | {r.rps:.0f} | {r.pct(50):.1f} | "
            f"{r.pct(95):.1f} | {r.pct(99):.1f} | {r.server_cpu_ms:.1f} | {r.hit_ratio()} | "
            f"{r.writes or '-'} | {' / '.join(f'{p:.1f}' for p in r.p95_runs) or '-'} | "
            f"{target} |"
        )
    verdict = "ok" if gen.duration_ms <= 5000 else "MISSED"
    lines += [
        "",
        "| job | contracts | rows inserted | duration | target |",
        "|---|---:|---:|---:|---|",
        f"| generate service days, 8-day window | {gen.active_contracts} | {gen.inserted} | "
        f"{gen.duration_ms} ms | ≤ 5 s: {verdict} |",
        f"| same, idempotent re-run | {rerun.active_contracts} | {rerun.inserted} | "
        f"{rerun.duration_ms} ms | - |",
        "",
        "web CPU ms/req: CPU time of the gunicorn workers divided by the requests served (the "
        "part of the latency that other processes on the machine cannot inflate; PostgreSQL "
        "and the load driver are not included). errors: non-2xx responses plus socket errors.",
        "",
        "Endpoints: " + "; ".join(f"{r.name} `{r.path_example}`" for r in results),
    ]
    memory: list[WebMemory] = ctx.get("memory", [])
    if memory:
        lines += [
            "",
            "| web process after the run | master RSS MiB | workers RSS MiB | RSS total MiB "
            "| PSS total MiB | target |",
            "|---|---:|---|---:|---:|---|",
        ]
        for m in memory:
            verdict = "ok" if memory_met(m) else "MISSED"
            lines.append(
                f"| {m.label} | {m.master_rss:.0f} | "
                f"{' + '.join(f'{w:.0f}' for w in m.workers_rss)} | {m.rss_total:.0f} | "
                f"{m.pss_total:.0f} | PSS ≤ {TARGET_WEB_MEMORY_MIB:.0f} MiB: {verdict} |"
            )
    return "\n".join(lines) + "\n"


def memory_met(m: WebMemory) -> bool:
    """Judged on PSS: the summed RSS counts every page the workers share with the master
    (preload_app) once per process, the container's memory once."""
    return m.label.startswith("bare") or m.pss_total <= TARGET_WEB_MEMORY_MIB


MEMORY: list[WebMemory] = []


def read_cache_lookups(port: int) -> dict[str, float]:
    """chefops_read_cache_lookups_total by result, summed over the workers (/metrics)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    text = conn.getresponse().read().decode()
    conn.close()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("chefops_read_cache_lookups_total{"):
            labels, value = line.rsplit(" ", 1)
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            found[result] = found.get(result, 0.0) + float(value)
    return found


class Writer(threading.Thread):
    """Confirms expected quantities through the API at a steady rate while a read endpoint is
    measured: each write invalidates the client's cached reads, as real traffic would."""

    def __init__(self, port: int, token: str, days: list[tuple[str, int]], rate: float) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.days, self.rate = port, token, days, rate
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {
            **PROXY_HEADERS,
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
        }
        while not self.stop.wait(1 / self.rate) and self.days:
            day_id, quantity = self.days.pop(0)
            body = json.dumps({"expectedQuantity": quantity})
            try:
                conn.request("POST", f"/api/service-days/{day_id}/confirm-expected", body, headers)
                response = conn.getresponse()
                response.read()
                if response.status == 201:
                    self.ok += 1
                else:
                    self.failed += 1
            except (OSError, http.client.HTTPException):
                self.failed += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        conn.close()


# The endpoints whose cached runs have a client writing at the same time (the contract list
# is the caterer's: the client's confirmations do not touch it).
WRITTEN_ENDPOINTS = frozenset({"service-day range (30 days)", "weekly report", "finance metrics"})
WRITER: dict[str, Any] = {}


def run_driver(
    wrk: str | None,
    port: int,
    concurrency: int,
    name: str,
    paths: list[str],
    token: str | None,
    script: Path | None,
    duration: float,
    max_requests: int,
) -> Result:
    """One run with the chosen driver: wrk when a script was written for the endpoint, the
    python driver otherwise. Bound with functools.partial to (wrk, port, concurrency), it is the
    ``measure`` callable of measure_once."""
    if wrk and script is not None:
        return load_wrk(
            wrk, script, port, name, paths[0], concurrency=concurrency, duration=duration
        )
    return load(
        port,
        name,
        paths,
        token,
        concurrency=concurrency,
        duration=duration,
        max_requests=max_requests,
    )


def measure_once(
    server: subprocess.Popen[bytes],
    name: str,
    paths: list[str],
    token: str | None,
    script: Path | None,
    measure: Any,
    cached_mode: bool,
    args: argparse.Namespace,
) -> Result:
    """One measured run of an endpoint, with the background writer and the cache counters."""
    writer = None
    if cached_mode and args.writes_per_second > 0 and name in WRITTEN_ENDPOINTS:
        writer = Writer(args.port, WRITER["token"], WRITER["days"], args.writes_per_second)
    lookups_before = read_cache_lookups(args.port) if cached_mode else {}
    cpu_before = workers_cpu_s(server)
    if writer is not None:
        writer.start()
    result: Result = measure(name, paths, token, script, args.duration, args.max_requests)
    if writer is not None:
        writer.stop.set()
        writer.join(timeout=30)
        result.writes = writer.ok
        if writer.failed:
            print(f"{name}: {writer.failed} background writes failed", flush=True)
    if result.count:
        result.server_cpu_ms = (workers_cpu_s(server) - cpu_before) * 1000 / result.count
    if cached_mode:
        after = read_cache_lookups(args.port)
        result.cache_hits = after.get("hit", 0) - lookups_before.get("hit", 0)
        result.cache_misses = after.get("miss", 0) - lookups_before.get("miss", 0)
    return result


def median_run(runs: list[Result], name: str) -> Result:
    """The run with the median p95 stands for the endpoint; every run's p95 is reported."""
    runs.sort(key=lambda run: run.pct(95))
    result = runs[len(runs) // 2]
    result.p95_runs = [run.pct(95) for run in runs]
    result.name = name
    return result


# The bare WSGI reference server of the run: {"server", "script", "measure"} (main()).
BARE: dict[str, Any] = {}


def run_endpoints(
    env: dict[str, str],
    endpoints: list[tuple[str, list[str], str | None]],
    label: str,
    measure: Any,
    scripts: tempfile.TemporaryDirectory[str],
    driver: str,
    args: argparse.Namespace,
) -> list[Result]:
    """Start gunicorn with ``env``, measure every endpoint, stop it. /api/health's runs alternate
    with runs of the bare WSGI reference (BARE, served beside it all along), so both see the
    same machine: its speed drifts within minutes when other work shares it."""
    server = start_gunicorn(env, args.port)
    results: list[Result] = []
    try:
        for index, (name, paths, token) in enumerate(endpoints):
            if token is not None:
                status, body = probe(args.port, paths[0], token)
                if status != 200:
                    note = f"not measured: {status} {json.loads(body).get('message', '')}"
                    results.append(Result(name=name + label, path_example=paths[0], note=note))
                    print(f"{name}: {note}", flush=True)
                    continue
                if name.startswith("contract list") and len(json.loads(body)) < 100:
                    print(f"{name}: warning, fewer than 100 contracts returned", flush=True)
            script = None
            if driver == "wrk":
                script = write_wrk_script(Path(scripts.name), index, paths, token, args.concurrency)
            # warm-up: let every worker open its database connection
            measure(name, paths, token, script, 1.0, 2000)
            cached_mode = env.get("READ_CACHE_SECONDS", "0") != "0"
            runs: list[Result] = []
            bare_runs: list[Result] = []
            for _ in range(args.repeat):
                if name == "health" and BARE:
                    bare_runs.append(
                        measure_once(
                            BARE["server"],
                            BARE_NAME,
                            ["/"],
                            None,
                            BARE["script"],
                            BARE["measure"],
                            False,
                            args,
                        )
                    )
                runs.append(
                    measure_once(server, name, paths, token, script, measure, cached_mode, args)
                )
            if bare_runs:
                results.append(median_run(bare_runs, BARE_NAME + label))
            result = median_run(runs, name + label)
            results.append(result)
            print(
                f"{name}: {result.count} requests, {result.errors} errors, {result.rps:.0f} req/s, "
                f"p50 {result.pct(50):.1f} ms, p95 {result.pct(95):.1f} ms, "
                f"p99 {result.pct(99):.1f} ms"
                + (f" ({result.error_detail})" if result.error_detail else ""),
                flush=True,
            )
        MEMORY.append(web_memory(server, "ChefOps" + label))
    finally:
        stop_gunicorn(server)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="cap per endpoint (python driver)"
    )
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk (C) or python threads; auto = wrk when it is on PATH",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="REDIS_URL of the server: its broker in this database, its cache in the next (keys "
        "under a prefix of this run, removed afterwards; never flushed); '' for no Redis",
    )
    parser.add_argument(
        "--read-cache",
        choices=("off", "on", "both"),
        default="both",
        help="READ_CACHE_SECONDS of the server: 0 (every request computes), 300, or both runs",
    )
    parser.add_argument(
        "--writes-per-second",
        type=float,
        default=2.0,
        help="confirmations the client makes through the API during each cached run of the "
        "client's endpoints (each invalidates its cached reads); 0 for none",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="measured runs per endpoint; the run with the median p95 is reported",
    )
    parser.add_argument(
        "--endpoints",
        default="",
        help="only the data endpoints whose name contains one of these comma-separated words "
        "(e.g. 'list,range'); health and the bare reference always run",
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "http.md"))
    parser.add_argument(
        "--code-root",
        default=str(ROOT),
        help="the checkout gunicorn serves (e.g. `git archive main` unpacked, for a baseline; "
        "it needs bench/bare_wsgi.py and a gunicorn.conf.py that serves it)",
    )
    args = parser.parse_args()
    SERVED_ROOT[0] = Path(args.code_root)
    if "bench" not in args.db_url.rsplit("/", 1)[1]:
        raise SystemExit("the database name must contain 'bench'")
    wrk = shutil.which("wrk")
    if args.driver == "wrk" and not wrk:
        raise SystemExit("--driver wrk: wrk is not on PATH (bin/ensure-wrk.sh installs it)")
    if args.driver == "auto" and not wrk:
        print(
            "note: wrk not found (bin/ensure-wrk.sh installs it); using the python driver, "
            "whose threads compete with the server for the CPU",
            flush=True,
        )
    driver = "wrk" if args.driver != "python" and wrk else "python"

    env = setup_env(args.db_url)
    ensure_database(args.db_url)
    print("migrating…", flush=True)
    run([PYTHON, "manage.py", "migrate", "--noinput"], env)
    print(run([PYTHON, "manage.py", "bench_data", "--if-missing"], env, timeout=900), flush=True)
    django_setup(env)
    ctx = prepare(env)
    print(ctx["generation"].line(), flush=True)
    print(f"background writer: {len(ctx['writable_days'])} days the client can confirm", flush=True)

    WRITER.update(token=ctx["client_token"], days=list(ctx["writable_days"]))
    wanted = [word.strip() for word in args.endpoints.split(",") if word.strip()]
    endpoints: list[tuple[str, list[str], str | None]] = [
        ("health", ["/api/health"], None),
        *(e for e in data_endpoints(ctx) if not wanted or any(w in e[0] for w in wanted)),
    ]

    ctx["driver"] = driver
    if wrk and driver == "wrk":
        ctx["driver_label"] = f"wrk {wrk_version(wrk)} (C, {wrk_threads(args.concurrency)} threads)"
    else:
        ctx["driver_label"] = "python threads"
    print(f"load driver: {ctx['driver_label']}", flush=True)

    measure = functools.partial(run_driver, wrk, args.port, args.concurrency)

    ctx["load_before"] = os.getloadavg()[0]
    scripts = tempfile.TemporaryDirectory(prefix="chefops-wrk-")
    results: list[Result] = []
    modes = {"off": [0], "on": [300], "both": [0, 300]}[args.read_cache]
    ctx["modes"] = modes
    try:
        # The reference: a bare WSGI app under the same gunicorn configuration, on the next
        # port, up all along; its runs alternate with /api/health's (run_endpoints).
        bare_env = server_env(
            args.db_url, args.port, redis_url=args.redis_url, cache_prefix=bench_cache_prefix("b")
        )
        bare_port = args.port + 1
        BARE["server"] = start_gunicorn(bare_env, bare_port, "bench.bare_wsgi")
        BARE["script"] = (
            write_wrk_script(Path(scripts.name), 999, ["/"], None, args.concurrency)
            if driver == "wrk"
            else None
        )
        BARE["measure"] = functools.partial(run_driver, wrk, bare_port, args.concurrency)
        BARE["measure"](BARE_NAME, ["/"], None, BARE["script"], 1.0, 2000)  # warm-up
        for read_cache_seconds in modes:
            label = " [read cache on]" if read_cache_seconds else ""
            if len(modes) > 1 and not read_cache_seconds:
                label = " [read cache off]"
            # A prefix of its own per mode: each mode starts with a cold cache.
            prefix = bench_cache_prefix("http")
            mode_env = server_env(
                args.db_url,
                args.port,
                redis_url=args.redis_url,
                read_cache_seconds=read_cache_seconds,
                cache_prefix=prefix,
            )
            print(f"--- server with READ_CACHE_SECONDS={read_cache_seconds}", flush=True)
            try:
                results += run_endpoints(mode_env, endpoints, label, measure, scripts, driver, args)
            finally:
                if args.redis_url:
                    clear_cache_prefix(args.redis_url, prefix)
    finally:
        if BARE:
            MEMORY.insert(0, web_memory(BARE["server"], BARE_NAME))
            stop_gunicorn(BARE["server"])
        scripts.cleanup()
    ctx["memory"] = MEMORY
    judge(results)

    report = markdown(results, ctx, args)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print()
    print(report)
    if statistics.fmean([r.errors for r in results if not r.note] or [0]) > 0:
        raise SystemExit("some requests failed")
    missed = [r.name for r in results if not r.met]
    missed += [f"web memory ({m.label})" for m in MEMORY if not memory_met(m)]
    if missed or ctx["generation"].duration_ms > 5000:
        raise SystemExit("targets missed: " + ", ".join(missed or ["generation"]))


if __name__ == "__main__":
    main()
