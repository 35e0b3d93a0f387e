"""The scale harness (`make scale`, issue 17): three instances, one connection budget, proven here.

    .venv/bin/python bench/scale.py [--load-seconds 75] [--threads 12] [--keep-logs]

Starts, on this machine and only on 127.0.0.1, each on a free port, in a private temporary
directory: a throwaway PostgreSQL cluster (``initdb``, ``max_connections=50``), migrated and
seeded with ``manage.py bench_data`` (small scale); PgBouncer in transaction mode in front of
it (at most 44 server connections); a throwaway Redis; three web instances (gunicorn with
``DJANGO_ENV=production``, ``DB_PGBOUNCER=true``, the default connection budget) behind
HAProxy (round robin, health-checked on /api/health); two Celery workers and one beat
(database scheduler, after ``sync_beat_schedule``). Readiness is always polled, never slept for.

Then it triggers the generation and fallback jobs three times each through the broker (as two
beats by mistake would), drives a mixed load through the balancer (contract list, service-day
range, weekly report, finance metrics; confirmations, pauses/resumes, registrations) for
``--load-seconds``, checks cache freshness across instances (write through A by its port, read
back through B and C by theirs), stops one instance (SIGTERM to its gunicorn master) a third
into the load and restarts it at two thirds, and polls pg_stat_activity throughout. At the end
it waits for the outbox to drain and judges (bench/scale_report.py): prints the table, writes
it to bench/results/scale.md, and exits 1 if any criterion fails. Everything it started is
stopped (process groups; PostgreSQL with ``pg_ctl stop``), also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import platform
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale_report import (  # noqa: E402 - after the path set-up
    MAX_CONNECTIONS,
    Figures,
    classify,
    endpoint_table,
    haproxy_config,
    judge,
    table,
)
from chefops.testing.pgbouncer import (  # noqa: E402 - after the path set-up
    pgbouncer_binary,
    pgbouncer_config,
    pgbouncer_run_as,
    prepare_workdir,
)

BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
DB_NAME = "chefops_scale_bench"
PGBOUNCER_POOL = 44  # server connections PgBouncer may open: 44 + this harness's monitor < 48
INSTANCES = ("web1", "web2", "web3")
READY_TIMEOUT = 120.0
JOBS = {  # period-claim job name -> Celery task
    "generate_service_days": "servicedays.generate_upcoming",
    "apply_fallback": "servicedays.apply_fallback",
}
JOB_PERIOD_SECONDS = {"generate_service_days": 86400, "apply_fallback": 3600}
BENCH_PASSWORD = "bench-password-2026"  # noqa: S105 - bench_data's throwaway password


def log(message: str) -> None:
    sys.stdout.write(f"[scale {datetime.now(UTC):%H:%M:%S}] {message}\n")
    sys.stdout.flush()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float = READY_TIMEOUT) -> float:
    """Poll ``check`` until it is true; the seconds it took. Raises after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not ready within {timeout:.0f} s")


def pg_bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]),
    )
    if not found:
        raise RuntimeError("initdb not found under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Stack:
    """Every process the harness started, stopped in reverse order by ``close``."""

    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    pg_data: Path | None = None
    pg_ctl: list[str] = field(default_factory=list)

    def logfile(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        path = self.logfile(name)
        path.parent.mkdir(exist_ok=True)
        with path.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        if name not in self.order:
            self.order.append(name)
        return proc

    def stop(
        self,
        name: str,
        sig: int = signal.SIGTERM,
        timeout: float = 30,
        *,
        group: bool = True,
    ) -> None:
        """``sig`` to the process group (or, ``group=False``, to the process alone: a gunicorn
        master then stops its workers itself), then SIGKILL to whatever is left of it."""
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)  # its own process group (start_new_session)
            else:
                proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Workers a master left behind (they share its process group).
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def close(self) -> None:
        for name in reversed(self.order):
            try:
                self.stop(name)
            except Exception as exc:  # noqa: BLE001 - stop the rest anyway
                log(f"stopping {name}: {exc}")
        if self.pg_data is not None and (self.pg_data / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self.pg_ctl,
                    "stop",
                    "-D",
                    str(self.pg_data),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "60",
                ],
                capture_output=True,
                check=False,
            )


def as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL and PgBouncer refuse to run as root: as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def start_postgres(stack: Stack) -> int:
    bindir = pg_bin_dir()
    data = stack.workdir / "pgdata"
    data.mkdir()
    chown_postgres(data)
    data.chmod(0o700)
    subprocess.run(
        as_postgres_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]
        ),
        capture_output=True,
        check=True,
    )
    port = free_port()
    stack.pg_ctl = as_postgres_user([str(bindir / "pg_ctl")])
    stack.pg_data = data
    options = (
        f"-p {port} -c listen_addresses={HOST} -c unix_socket_directories={data}"
        f" -c max_connections={MAX_CONNECTIONS} -c fsync=off -c shared_buffers=128MB"
    )
    subprocess.run(
        [
            *stack.pg_ctl,
            "start",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(data / "server.log"),
            "-w",
            "-t",
            "120",
        ],
        capture_output=True,
        check=True,
    )
    return port


def start_pgbouncer(stack: Stack, server_port: int) -> int:
    workdir = stack.workdir / "pgbouncer"
    workdir.mkdir()
    prepare_workdir(workdir, "postgres")
    port = free_port()
    config = workdir / "pgbouncer.ini"
    config.write_text(scale_pgbouncer_config(workdir, port=port, server_port=server_port))
    stack.spawn("pgbouncer", [pgbouncer_binary(), str(config)], dict(os.environ))
    wait_for("pgbouncer", lambda: pg_ready(port))
    return port


def scale_pgbouncer_config(workdir: Path, *, port: int, server_port: int) -> str:
    """PgBouncer's configuration: at most ``PGBOUNCER_POOL`` server connections to the throwaway
    cluster, idle ones kept 30 s."""
    return pgbouncer_config(
        port=port,
        workdir=workdir,
        server_port=server_port,
        user="postgres",
        pool_size=PGBOUNCER_POOL,
        server_idle_timeout=30,
        run_as=pgbouncer_run_as(),
    )


def pg_ready(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host=HOST, port=port, user="postgres", dbname="postgres", connect_timeout=2
        ) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


def start_redis(stack: Stack) -> int:
    port = free_port()
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    stack.spawn(
        "redis",
        [
            redis_server,
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(stack.workdir),
        ],
        dict(os.environ),
    )

    def ping() -> bool:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_for("redis", ping)
    return port


def app_env(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """Production settings (chefops/settings.py) for every process of the deployment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DB_"))}
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "CACHE_URL",
        "CELERY_BROKER_URL",
        "CACHE_KEY_PREFIX",
    ):
        env.pop(name, None)
    env.update(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "METRICS_TOKEN": secrets.token_urlsafe(24),
            "NUM_PROXIES": "1",  # HAProxy adds X-Forwarded-For
            "ALLOW_LOCAL_ARCHIVES": "true",
            "ARCHIVE_DIR": str(workdir / "archive"),
            "BACKUP_DIR": str(workdir / "backups"),
            "RUN_DIR": str(workdir / "run"),
            "DATABASE_URL": database_url,
            "DB_PGBOUNCER": "true",
            "REDIS_URL": redis_url,
            # The production defaults, named: 3 web workers x 4 threads, 2 Celery processes
            # and beat in 16 connections per instance (DB_CONNECTIONS_PER_INSTANCE): 15
            # persistent connections fit, so no pool (README "Scaling", chefops/dbbudget.py).
            "WEB_CONCURRENCY": "3",
            "GUNICORN_THREADS": "4",
            "CELERY_WORKER_CONCURRENCY": "2",
            "ACCESS_TOKEN_MINUTES": "60",
            "LOG_JSON": "false",
            # Every INFO line, so the harness can read the task results in the worker logs.
            "LOG_INFO_SAMPLE_RATE": "1.0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PROMETHEUS_MULTIPROC_DIR": "",
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def http_status(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers={"X-Forwarded-Proto": "https", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def start_web(stack: Stack, name: str, port: int, env: dict[str, str]) -> None:
    stack.spawn(
        name,
        [
            str(BIN / "gunicorn"),
            "chefops.wsgi",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"{HOST}:{port}",
        ],
        {**env, "PORT": str(port)},
    )


def web_ready(stack: Stack, name: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        if stack.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited during start-up (see {stack.logfile(name)})")
        return http_status(port, "/api/health") == 200

    return check


def haproxy_states(stats_socket: Path) -> dict[str, str]:
    """Server name -> status (UP, DOWN, ...) of the backend, from HAProxy's stats socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    states: dict[str, str] = {}
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == "web" and row.get("svname") in INSTANCES:
            states[row["svname"]] = row.get("status", "")
    return states


def wait_log(stack: Stack, name: str, marker: str) -> Callable[[], bool]:
    def check() -> bool:
        if stack.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited during start-up (see {stack.logfile(name)})")
        return marker in stack.logfile(name).read_text(errors="replace")

    return check


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Sample:
    endpoint: str
    method: str
    started: float
    ended: float
    outcome: str  # ok / refused / error / timeout
    detail: str = ""


class Client:
    """One keep-alive HTTP connection (http.client), reopened after any failure. A load thread
    uses one for all its callers (the token goes with each request): a connection left idle
    while the thread used others would be closed by HAProxy (``timeout http-keep-alive``) and
    its next request would fail on the client's side, never reaching the balancer."""

    def __init__(self, port: int, token: str = "") -> None:
        self.port, self.token = port, token
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=15)
        headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
        bearer = self.token if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        payload = json.dumps(body) if body is not None else None
        try:
            self.conn.request(method, path, payload, headers)
            response = self.conn.getresponse()
            raw = response.read()
        except BaseException as exc:
            if self.conn.sock is not None:  # which connection, for the balancer's log
                with suppress(OSError):
                    exc.add_note(f"local port {self.conn.sock.getsockname()[1]}")
            self.close()
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")[:200]
        return response.status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class World:
    """The seeded data the load uses, and the tokens of its callers."""

    caterer_token: str
    client_tokens: list[str]
    pause_contracts: list[tuple[int, str]]  # (client index, contract id)
    stale_contracts: list[str]  # client 0's, paused/resumed by the freshness checks only
    read_contracts: list[str]  # client 0's, never paused
    confirm_days: list[tuple[int, str, int]]  # (client index, day id, quantity)
    stale_days: list[tuple[str, str, int]]  # client 0's (contract id, day id, quantity)
    date_from: str
    date_to: str
    monday: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_day(self) -> tuple[int, str, int] | None:
        with self.lock:
            return self.confirm_days.pop() if self.confirm_days else None


def load_world(db_port: int, balancer: int) -> World:
    import psycopg

    with psycopg.connect(host=HOST, port=db_port, user="postgres", dbname=DB_NAME) as conn:

        def company(email: str) -> str:
            row = conn.execute(
                "SELECT id FROM companies_company WHERE email = %s", [email]
            ).fetchone()
            assert row is not None, email
            return str(row[0])

        clients = [company(f"bench-client-{i}@bench.example.com") for i in range(4)]
        today = datetime.now(UTC).date()

        def contracts(client: str) -> list[str]:
            rows = conn.execute(
                "SELECT id FROM contracts_contract WHERE client_company_id = %s"
                " AND status = 'ACTIVE' ORDER BY id",
                [client],
            ).fetchall()
            return [str(r[0]) for r in rows]

        def days(contract_ids: list[str]) -> list[tuple[str, str, int]]:
            rows = conn.execute(
                "SELECT d.contract_id, d.id, c.min_daily_quantity FROM servicedays_serviceday d"
                " JOIN contracts_contract c ON c.id = d.contract_id"
                " WHERE d.contract_id = ANY(%s::uuid[]) AND d.expected_confirmed_at IS NULL"
                " AND d.status <> 'CONFIRMED' AND d.service_date >= %s ORDER BY d.id",
                [contract_ids, today + timedelta(days=2)],
            ).fetchall()
            return [(str(c), str(d), int(q)) for c, d, q in rows]

        c0 = contracts(clients[0])
        # Client 0's first 6 contracts are paused/resumed by the freshness checks, the next 4
        # hold the days they confirm; the load uses the rest.
        stale_contracts, stale_day_contracts, read_contracts = c0[:6], c0[6:10], c0[10:]
        pause_contracts: list[tuple[int, str]] = []
        confirm_days: list[tuple[int, str, int]] = []
        for index, client in enumerate(clients):
            own = c0[10:] if index == 0 else contracts(client)
            # A third of each client's contracts are paused and resumed by the load; the
            # confirmations go to the others (a paused contract refuses them).
            paused = own[: len(own) // 3]
            pause_contracts += [(index, c) for c in paused]
            confirm_days += [(index, d, q) for _c, d, q in days(own[len(own) // 3 :])]
        stale_days = days(stale_day_contracts)
    random.Random(17).shuffle(confirm_days)
    pause_ids = {c for _i, c in pause_contracts}
    read_contracts = [c for c in read_contracts if c not in pause_ids]
    tokens = [login(balancer, f"bench-client-{i}@bench.example.com") for i in range(4)]
    monday = today - timedelta(days=today.weekday() + 7)
    return World(
        caterer_token=login(balancer, "bench-catering-0@bench.example.com"),
        client_tokens=tokens,
        pause_contracts=pause_contracts,
        stale_contracts=stale_contracts,
        read_contracts=read_contracts,
        confirm_days=confirm_days,
        stale_days=stale_days,
        date_from=(today - timedelta(days=29)).isoformat(),
        date_to=today.isoformat(),
        monday=monday.isoformat(),
    )


def login(port: int, email: str) -> str:
    status, body = Client(port).request(
        "POST", "/api/auth/login", {"email": email, "password": BENCH_PASSWORD}
    )
    if status != 200:
        raise RuntimeError(f"login {email}: {status} {body}")
    return str(body["accessToken"])


class Load:
    """``threads`` threads, each with a keep-alive connection to the balancer, drawing a mix
    of ~80 % reads and ~20 % writes until ``stop`` is set."""

    def __init__(self, world: World, balancer: int, threads: int) -> None:
        self.world, self.balancer, self.threads = world, balancer, threads
        self.stop = threading.Event()
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.registrations = 0
        self.paused_ok = 0
        self.resumed_ok = 0
        self.confirmed_ok = 0
        self._pause_queue = list(world.pause_contracts)
        random.Random(3).shuffle(self._pause_queue)
        self.started = time.monotonic()
        self._registration_budget = 25  # a few per run: each hashes a password (Argon2)

    def record(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def run(self) -> list[threading.Thread]:
        self.started = time.monotonic()
        workers = [
            threading.Thread(target=self.worker, args=(i,), daemon=True)
            for i in range(self.threads)
        ]
        for worker in workers:
            worker.start()
        return workers

    def worker(self, index: int) -> None:
        rng = random.Random(index)
        conn = Client(self.balancer)

        w = self.world
        while not self.stop.is_set():
            roll = rng.random()
            client_index = rng.randrange(len(w.client_tokens))
            ctoken = w.client_tokens[client_index]
            contract = rng.choice(w.read_contracts)
            if roll < 0.20:
                self.call(
                    conn,
                    w.caterer_token,
                    "contract list",
                    "GET",
                    "/api/contracts?limit=100",
                )
            elif roll < 0.40:
                self.call(
                    conn,
                    w.client_tokens[0],
                    "service-day range",
                    "GET",
                    f"/api/contracts/{contract}/service-days?from={w.date_from}&to={w.date_to}",
                )
            elif roll < 0.58:
                self.call(
                    conn,
                    w.client_tokens[0],
                    "weekly report",
                    "GET",
                    f"/api/contracts/{contract}/reports/weekly?weekStart={w.monday}",
                )
            elif roll < 0.78:
                self.call(
                    conn,
                    ctoken,
                    "finance metrics",
                    "GET",
                    "/api/contracts/finance-metrics",
                )
            elif roll < 0.90:
                day = w.take_day()
                if day is None:
                    continue
                idx, day_id, quantity = day
                if self.call(
                    conn,
                    w.client_tokens[idx],
                    "confirm expected",
                    "POST",
                    f"/api/service-days/{day_id}/confirm-expected",
                    {"expectedQuantity": quantity},
                ):
                    with self.lock:
                        self.confirmed_ok += 1
            elif roll < 0.98:
                with self.lock:
                    if not self._pause_queue:
                        continue
                    idx, contract_id = self._pause_queue.pop()
                tok = w.client_tokens[idx]
                if self.call(conn, tok, "pause", "POST", f"/api/contracts/{contract_id}/pause"):
                    with self.lock:
                        self.paused_ok += 1
                if self.call(conn, tok, "resume", "POST", f"/api/contracts/{contract_id}/resume"):
                    with self.lock:
                        self.resumed_ok += 1
                with self.lock:
                    self._pause_queue.insert(0, (idx, contract_id))
            else:
                with self.lock:
                    if self._registration_budget <= 0:
                        continue
                    self._registration_budget -= 1
                suffix = uuid.uuid4().hex[:12]
                if self.call(
                    conn,
                    "",
                    "registration",
                    "POST",
                    "/api/clients",
                    {
                        "name": f"Scale client {suffix}",
                        "email": f"scale-{suffix}@scale.example.com",
                        # Unlike the e-mail (Django's similarity validator refuses that).
                        "password": f"Mango!{secrets.token_hex(8)}",
                        "workMode": "HYBRID",
                        "officeDays": [1, 3],
                    },
                ):
                    with self.lock:
                        self.registrations += 1
        conn.close()

    def call(
        self,
        conn: Client,
        token: str,
        endpoint: str,
        method: str,
        path: str,
        body: Any = None,
    ) -> bool:
        started = time.monotonic()
        try:
            status, data = conn.request(method, path, body, token=token)
        except TimeoutError:
            detail = f"t={started - self.started:.1f}s {path}"
            self.record(Sample(endpoint, method, started, time.monotonic(), "timeout", detail))
            return False
        except (OSError, http.client.HTTPException) as exc:
            notes = " ".join(getattr(exc, "__notes__", []))
            detail = f"t={started - self.started:.1f}s {path}: {exc!r} {notes}"
            self.record(Sample(endpoint, method, started, time.monotonic(), "error", detail))
            return False
        outcome = classify(method, status)
        detail = "" if outcome == "ok" else f"{method} {path}: {status} {str(data)[:160]}"
        detail = f"t={started - self.started:.1f}s {detail}"
        self.record(Sample(endpoint, method, started, time.monotonic(), outcome, detail))
        return outcome == "ok"


class Freshness:
    """Writes through one instance by its own port and reads back through the two others.

    Pause (or resume) one of client 0's reserved contracts through A, then read the contract
    through B and C: its status must be the new one. Confirm a day through A, then read its
    range through B and C: the day must show the quantity. Instances being restarted are left
    out of the rotation (``down``)."""

    def __init__(self, world: World, ports: dict[str, int]) -> None:
        self.world, self.ports = world, ports
        self.down: set[str] = set()
        self.stop = threading.Event()
        self.checks = 0
        self.stale: list[str] = []
        self.errors: list[str] = []
        self.confirmed_ok = 0
        self.paused_ok = 0
        self.resumed_ok = 0

    def run(self) -> None:
        rng = random.Random(5)
        turn = 0
        paused: set[str] = set()
        days = list(self.world.stale_days)
        while not self.stop.is_set():
            up = [n for n in INSTANCES if n not in self.down]
            if len(up) < 3:
                self.stop.wait(0.2)
                continue
            turn += 1
            a, b, c = up[turn % 3], up[(turn + 1) % 3], up[(turn + 2) % 3]
            token = self.world.client_tokens[0]
            try:
                if turn % 2 and days:
                    contract_id, day_id, quantity = days.pop(rng.randrange(len(days)))
                    self.confirm_and_check(token, a, (b, c), contract_id, day_id, quantity)
                else:
                    contract_id = self.world.stale_contracts[turn % len(self.world.stale_contracts)]
                    action = "resume" if contract_id in paused else "pause"
                    if self.transition_and_check(token, a, (b, c), contract_id, action):
                        paused.symmetric_difference_update({contract_id})
            except (OSError, http.client.HTTPException) as exc:
                if not self.down:
                    self.errors.append(f"freshness check via {a}: {exc!r}")
            self.stop.wait(0.5)

    def transition_and_check(
        self,
        token: str,
        a: str,
        readers: tuple[str, str],
        contract_id: str,
        action: str,
    ) -> bool:
        status, body = Client(self.ports[a], token).request(
            "POST", f"/api/contracts/{contract_id}/{action}"
        )
        if status != 201:
            self.errors.append(f"{action} {contract_id} via {a}: {status} {str(body)[:160]}")
            return False
        if action == "pause":
            self.paused_ok += 1
        else:
            self.resumed_ok += 1
        expected = "PAUSED" if action == "pause" else "ACTIVE"
        for reader in readers:
            _status, got = Client(self.ports[reader], token).request(
                "GET", f"/api/contracts/{contract_id}"
            )
            self.checks += 1
            if not isinstance(got, dict) or got.get("status") != expected:
                seen = got.get("status") if isinstance(got, dict) else got
                self.stale.append(f"{action} via {a}, {reader} saw {seen}")
        return True

    def confirm_and_check(
        self,
        token: str,
        a: str,
        readers: tuple[str, str],
        contract_id: str,
        day_id: str,
        quantity: int,
    ) -> None:
        status, body = Client(self.ports[a], token).request(
            "POST",
            f"/api/service-days/{day_id}/confirm-expected",
            {"expectedQuantity": quantity},
        )
        if status != 201:
            self.errors.append(f"confirm {day_id} via {a}: {status} {str(body)[:160]}")
            return
        self.confirmed_ok += 1
        today = datetime.now(UTC).date()
        path = (
            f"/api/contracts/{contract_id}/service-days"
            f"?from={today.isoformat()}&to={(today + timedelta(days=14)).isoformat()}"
        )
        for reader in readers:
            _status, got = Client(self.ports[reader], token).request("GET", path)
            self.checks += 1
            rows = got if isinstance(got, list) else []
            day = next((d for d in rows if d.get("id") == day_id), None)
            if day is None or day.get("expectedQuantity") != quantity:
                self.stale.append(f"confirm via {a}, {reader} saw {day}")


class ConnectionMonitor:
    """Polls pg_stat_activity on the cluster itself (one connection, not counted) and, through
    PgBouncer's admin console, the connections the app processes hold to PgBouncer."""

    def __init__(self, db_port: int, bouncer_port: int, stack: Stack) -> None:
        self.db_port, self.bouncer_port, self.stack = db_port, bouncer_port, stack
        self.peak = 0
        self.peak_clients = 0
        self.peak_breakdown: dict[str, int] = {}
        self.error = ""  # set if polling stopped early: the peaks would be incomplete
        self.stop = threading.Event()

    def breakdown(self) -> dict[str, int]:
        """Connections to PgBouncer per process of the stack (by process group), from ss."""
        groups = {proc.pid: name for name, proc in self.stack.procs.items()}
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( dport = :{self.bouncer_port} )"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        counts: dict[str, int] = {}
        for line in out.splitlines():
            if "pid=" not in line:
                continue
            pid = int(line.split("pid=", 1)[1].split(",", 1)[0])
            try:
                name = groups.get(os.getpgid(pid), "other")
            except ProcessLookupError:
                name = "gone"
            counts[name] = counts.get(name, 0) + 1
        return counts

    def run(self) -> None:
        import psycopg

        try:
            self.poll()
        except psycopg.Error as exc:
            self.error = f"connection monitor stopped: {exc}"

    def poll(self) -> None:
        import psycopg

        with (
            psycopg.connect(
                host=HOST,
                port=self.db_port,
                user="postgres",
                dbname="postgres",
                autocommit=True,
            ) as conn,
            psycopg.connect(
                host=HOST,
                port=self.bouncer_port,
                user="postgres",
                dbname="pgbouncer",
                autocommit=True,
                cursor_factory=psycopg.ClientCursor,  # the console speaks the simple protocol
            ) as admin,
        ):
            while not self.stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()"
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                cursor = admin.execute("SHOW CLIENTS")
                names = [c.name for c in cursor.description or []]
                database = names.index("database")
                clients = [r for r in cursor.fetchall() if r[database] != "pgbouncer"]
                if len(clients) > self.peak_clients:
                    self.peak_clients = len(clients)
                    with suppress(OSError, ValueError):
                        self.peak_breakdown = self.breakdown()
                self.stop.wait(0.1)


# --- the run -----------------------------------------------------------------------------------


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run like Ctrl-C: the ``finally`` stops everything."""

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def send_jobs(redis_url: str, copies: int) -> None:
    """Enqueue each period-claimed job ``copies`` times, as ``copies`` beats would."""
    from celery import Celery

    app = Celery("scale-harness", broker=redis_url)
    app.conf.broker_connection_retry_on_startup = False
    with app.connection_for_write() as conn:
        for _ in range(copies):
            for task in JOBS.values():
                app.send_task(task, connection=conn)


def job_results(stack: Stack) -> dict[str, list[str]]:
    """The return value of every run of the period-claimed jobs, from the worker logs."""
    found: dict[str, list[str]] = {job: [] for job in JOBS}
    for name in ("worker1", "worker2"):
        for line in stack.logfile(name).read_text(errors="replace").splitlines():
            for job, task in JOBS.items():
                if f"Task {task}[" in line and " succeeded in " in line:
                    found[job].append(line.split(": ", 1)[-1] if ": " in line else line)
    return found


def periods_spanned(job: str, start: float, end: float) -> int:
    seconds = JOB_PERIOD_SECONDS[job]
    return int(end // seconds) - int(start // seconds) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-seconds", type=float, default=75.0)
    parser.add_argument("--threads", type=int, default=12)
    parser.add_argument("--contracts", type=int, default=2000)
    parser.add_argument("--service-days", type=int, default=200000)
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    begun = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="chefops-scale-"))
    workdir.chmod(0o755)
    stack = Stack(workdir)
    figures = Figures()
    ok = False
    try:
        with signals_raise():
            ok = scenario(stack, args, figures)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc}); stopping everything")
    finally:
        log("stopping every process the harness started")
        stack.close()
        if args.keep_logs or not ok:
            shutil.rmtree(workdir / "pgdata", ignore_errors=True)  # the cluster is no evidence
            log(f"logs kept in {workdir / 'logs'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"total {time.monotonic() - begun:.0f} s")
    return 0 if ok else 1


def scenario(stack: Stack, args: argparse.Namespace, figures: Figures) -> bool:
    workdir = stack.workdir
    log(f"working directory {workdir}")
    db_port = start_postgres(stack)
    log(f"PostgreSQL ({pg_bin_dir().parent.name}) on {db_port}, max_connections={MAX_CONNECTIONS}")
    import psycopg

    with psycopg.connect(
        host=HOST, port=db_port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    redis_port = start_redis(stack)
    redis_url = f"redis://{HOST}:{redis_port}/0"
    direct_env = app_env(workdir, f"postgres://postgres@{HOST}:{db_port}/{DB_NAME}", redis_url)
    direct_env["DB_PGBOUNCER"] = "false"
    mark = time.monotonic()
    manage(direct_env, "migrate", "--noinput")
    manage(
        direct_env,
        "bench_data",
        "--companies",
        "200",
        "--contracts",
        str(args.contracts),
        "--service-days",
        str(args.service_days),
    )
    manage(direct_env, "sync_beat_schedule")
    with psycopg.connect(
        host=HOST, port=db_port, user="postgres", dbname=DB_NAME, autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE")
    log(f"database migrated and seeded in {time.monotonic() - mark:.0f} s")

    bouncer_port = start_pgbouncer(stack, db_port)
    log(f"PgBouncer (transaction mode, {PGBOUNCER_POOL} server connections) on {bouncer_port}")
    env = app_env(workdir, f"postgres://postgres@{HOST}:{bouncer_port}/{DB_NAME}", redis_url)

    monitor = ConnectionMonitor(db_port, bouncer_port, stack)
    threading.Thread(target=monitor.run, daemon=True).start()

    ports = {name: free_port() for name in INSTANCES}
    for name, port in ports.items():
        start_web(stack, name, port, env)
    for name, port in ports.items():
        took = wait_for(name, web_ready(stack, name, port))
        log(f"{name} (gunicorn, 3 workers x 4 threads) ready on {port} after {took:.1f} s")

    balancer = free_port()
    stats = workdir / "haproxy.sock"
    (workdir / "haproxy.cfg").write_text(
        haproxy_config(listen_port=balancer, servers=list(ports.items()), stats_socket=str(stats))
    )
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    stack.spawn(
        "haproxy",
        [haproxy, "-db", "-f", str(workdir / "haproxy.cfg")],
        dict(os.environ),
    )
    wait_for(
        "haproxy",
        lambda: (
            set(haproxy_states(stats).values()) == {"UP"}
            and len(haproxy_states(stats)) == len(INSTANCES)
        ),
    )
    log(f"HAProxy on {balancer}: {haproxy_states(stats)}")

    for i in (1, 2):
        stack.spawn(
            f"worker{i}",
            [
                str(BIN / "celery"),
                "-A",
                "chefops",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                f"--hostname=worker{i}@%h",
            ],
            env,
        )
    for i in (1, 2):
        wait_for(f"worker{i}", wait_log(stack, f"worker{i}", " ready."))
    stack.spawn("beat", [str(BIN / "celery"), "-A", "chefops", "beat", "--loglevel=INFO"], env)
    wait_for("beat", wait_log(stack, "beat", "Sending due task"))
    log("2 Celery workers and beat (database scheduler) ready")

    # The period-claimed jobs, three copies each (three beats' worth), then wait for all six.
    jobs_sent = time.time()
    send_jobs(redis_url, copies=3)
    wait_for(
        "generation and fallback runs",
        lambda: all(len(v) >= 3 for v in job_results(stack).values()),
        timeout=240,
    )
    log("generation and fallback: 3 copies each ran")

    world = load_world(db_port, balancer)
    log(
        f"load data: {len(world.confirm_days)} days to confirm, "
        f"{len(world.pause_contracts)} contracts to pause/resume"
    )
    with psycopg.connect(host=HOST, port=db_port, user="postgres", dbname=DB_NAME) as conn:
        row = conn.execute("SELECT count(*), now() FROM outbox_outboxevent").fetchone()
        assert row is not None
        events_before, load_start_db = int(row[0]), row[1]

    load = Load(world, balancer, args.threads)
    fresh = Freshness(world, ports)
    fresh_thread = threading.Thread(target=fresh.run, daemon=True)
    load_started = time.monotonic()
    threads = load.run()
    fresh_thread.start()
    victim = INSTANCES[1]

    # A third in: stop one instance (SIGTERM to its gunicorn master: a platform's stop).
    wait_until(load_started + args.load_seconds / 3)
    fresh.down.add(victim)
    kill_at = time.monotonic()
    stack.stop(victim, signal.SIGTERM, group=False)
    wait_for(
        "haproxy marks the stopped instance down",
        lambda: haproxy_states(stats).get(victim, "").startswith("DOWN"),
        timeout=30,
    )
    figures.kill_marked_down_s = time.monotonic() - kill_at
    log(
        f"{victim} stopped at t={kill_at - load_started:.1f}s (SIGTERM); "
        f"HAProxy marked it DOWN {figures.kill_marked_down_s:.1f} s after the signal"
    )
    # Two thirds in: start it again, on the same port.
    wait_until(load_started + 2 * args.load_seconds / 3)
    restart_at = time.monotonic()
    start_web(stack, victim, ports[victim], env)
    wait_for(
        "haproxy marks the restarted instance up",
        lambda: haproxy_states(stats).get(victim) == "UP",
    )
    figures.restart_marked_up_s = time.monotonic() - restart_at
    fresh.down.discard(victim)
    log(f"{victim} restarted; HAProxy marked it UP after {figures.restart_marked_up_s:.1f} s")
    back_at = time.monotonic()

    wait_until(load_started + args.load_seconds)
    load.stop.set()
    for t in threads:
        t.join(timeout=60)
    fresh.stop.set()
    fresh_thread.join(timeout=60)
    figures.duration_s = time.monotonic() - load_started
    log(f"load done after {figures.duration_s:.0f} s")

    # Outbox: wait for the workers (beat's sweep every 5 s) to process every event.
    def drained() -> bool:
        with psycopg.connect(host=HOST, port=db_port, user="postgres", dbname=DB_NAME) as conn:
            row = conn.execute(
                "SELECT count(*) FROM outbox_outboxevent WHERE status IN ('PENDING','PROCESSING')"
            ).fetchone()
        return row is not None and row[0] == 0

    with suppress(RuntimeError):
        wait_for("outbox drained", drained, timeout=120)
    monitor.stop.set()
    if monitor.error:
        raise RuntimeError(monitor.error)
    figures.peak_server_connections = monitor.peak
    figures.peak_app_clients = monitor.peak_clients
    log(f"app connections to PgBouncer at their peak, by process: {monitor.peak_breakdown}")

    # --- figures ---
    for s in load.samples:
        figures.requests += 1
        entry = figures.by_endpoint.setdefault(s.endpoint, [0, 0, 0, 0])
        entry[0] += 1
        in_flight_at_kill = s.started < kill_at <= s.ended
        if s.outcome == "ok":
            figures.ok += 1
            entry[1] += 1
            continue
        if s.outcome == "refused":
            figures.refused += 1
            entry[2] += 1
            continue
        entry[3] += 1
        if in_flight_at_kill:
            figures.kill_failed_in_flight += 1
        else:
            if kill_at <= s.started <= back_at:
                figures.kill_failed_after += 1
            if s.outcome == "timeout":
                figures.timeouts += 1
            else:
                figures.errors += 1
        if len(figures.error_samples) < 10:
            figures.error_samples.append(f"{s.outcome}: {s.detail}")
    figures.errors += len(fresh.errors)
    figures.error_samples += fresh.errors[:5]
    figures.staleness_checks = fresh.checks
    figures.stale_reads = len(fresh.stale)

    with psycopg.connect(host=HOST, port=db_port, user="postgres", dbname=DB_NAME) as conn:

        def one(sql: str, params: list[Any] | None = None) -> int:
            row = conn.execute(sql, params or []).fetchone()
            return int(row[0]) if row else 0

        figures.outbox_events = one("SELECT count(*) FROM outbox_outboxevent")
        figures.outbox_unprocessed = one(
            "SELECT count(*) FROM outbox_outboxevent WHERE status <> 'PROCESSED'"
        )
        figures.ledger_duplicates = one(
            "SELECT count(*) FROM (SELECT 1 FROM outbox_processedevent"
            " GROUP BY event_id, handler_name HAVING count(*) > 1) d"
        )
        # Effects once: one event per successful write of the load (and no more).
        expected = {
            "servicedays.expected_confirmed": load.confirmed_ok + fresh.confirmed_ok,
            "contract.paused": load.paused_ok + fresh.paused_ok,
            "contract.resumed": load.resumed_ok + fresh.resumed_ok,
            "company.registered": load.registrations,
        }
        for event_type, count in expected.items():
            got = one(
                "SELECT count(*) FROM outbox_outboxevent"
                " WHERE event_type = %s AND created_at >= %s",
                [event_type, load_start_db],
            )
            if got != count:
                figures.effect_mismatches.append(f"{event_type}: {got} events, {count} writes")
        figures.job_duplicate_effects = one(
            "SELECT count(*) FROM (SELECT 1 FROM outbox_outboxevent"
            " WHERE event_type = 'servicedays.fallback_applied'"
            " GROUP BY aggregate_id HAVING count(*) > 1) d"
        ) + one(
            "SELECT count(*) FROM (SELECT 1 FROM servicedays_serviceday"
            " GROUP BY contract_id, service_date HAVING count(*) > 1) d"
        )
        claims = conn.execute("SELECT job, last_period FROM chefops_scheduledjob").fetchall()
        log(f"outbox: {events_before} events before the load; period claims: {claims}")
    results = job_results(stack)
    jobs_done = time.time()
    for job, lines in results.items():
        figures.job_runs[job] = sum(1 for line in lines if "skipped" not in line)
        figures.job_periods[job] = periods_spanned(job, jobs_sent, jobs_done)
        log(f"{job}: {len(lines)} runs: {[line.split(' succeeded in ', 1)[-1] for line in lines]}")

    verdicts = judge(figures)
    report = render(figures, verdicts, args, time.monotonic())
    sys.stdout.write("\n" + report + "\n")
    out = ROOT / "bench" / "results" / "scale.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report + "\n")
    log(f"written to {out.relative_to(ROOT)}")
    return all(v.passed for v in verdicts)


def wait_until(moment: float) -> None:
    """Wait for a point of the load's own timeline (the load runs meanwhile)."""
    remaining = moment - time.monotonic()
    if remaining > 0:
        threading.Event().wait(remaining)


def render(figures: Figures, verdicts: list[Any], args: argparse.Namespace, _now: float) -> str:
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Scale harness, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}: "
        f"{os.cpu_count()} cores, load average {load_avg} at the end (shared with other work).",
        f"Load: {args.threads} threads through HAProxy for {figures.duration_s:.0f} s, "
        f"{figures.requests / max(figures.duration_s, 1):.0f} req/s.",
        "",
        table(verdicts),
        "",
        endpoint_table(figures),
    ]
    if figures.error_samples:
        lines += ["", "First failures:", *[f"- {e}" for e in figures.error_samples]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
