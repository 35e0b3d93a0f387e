"""A real gunicorn for tests that need several worker processes (loopback only).

Waits for readiness, never for time: the server binds a port the kernel picks (no race for a
"free" port with another run), and a test gets it only once every worker has logged that it
is ready and ``/api/health`` answered. Start-up may take long on a busy machine (importing
Django alone took 5.8 s at load 14), so the deadline is generous and every kind of
connection error or timeout while workers boot is retried.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 300
MANAGE_TIMEOUT_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 60
# What a request may raise while a server (or a recycled worker) is still coming up:
# refused, reset, closed without an answer, timed out (all OSError), or a torn response.
NOT_UP_YET = (OSError, http.client.HTTPException)
_LISTENING = re.compile(r"Listening at: http://[^\s:]+:(\d+)")
_WORKER_READY = "Worker ready"  # logged by gunicorn.conf.py's post_worker_init


def free_port() -> int:
    """A port nobody listens on (for a client that must find it closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    url: str, token: str | None = None, *, timeout: float = REQUEST_TIMEOUT_SECONDS
) -> tuple[int, bytes]:
    """(status, body) of a GET, error statuses included."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback http
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:  # noqa: S310 - loopback
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Gunicorn:
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def port(self) -> int | None:
        found = _LISTENING.search(self.log())
        return int(found.group(1)) if found else None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port()}"

    def workers_ready(self) -> int:
        """Workers that finished booting since the start (recycled ones count again)."""
        return self.log().count(_WORKER_READY)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def failure(self, what: str) -> AssertionError:
        tail = "\n".join(self.log().splitlines()[-30:])
        return AssertionError(f"{what}; gunicorn's log ends with:\n{tail}")


def start_gunicorn(env: dict[str, str], log_dir: Path) -> Gunicorn:
    """``gunicorn chefops.wsgi -c gunicorn.conf.py`` from the project root on a port of the
    kernel's choosing on 127.0.0.1, its log in ``log_dir``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "gunicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "chefops.wsgi",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                "127.0.0.1:0",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Gunicorn(proc, log_path, env)


def wait_until_serving(
    server: Gunicorn,
    *,
    workers: int,
    status: int = 200,
    timeout: float = START_TIMEOUT_SECONDS,
) -> None:
    """Until ``workers`` workers have booted and ``/api/health`` answers ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise server.failure(f"gunicorn exited during start-up ({server.proc.returncode})")
        if time.monotonic() > deadline:
            raise server.failure(f"gunicorn did not serve within {timeout} s")
        if server.port() is not None and server.workers_ready() >= workers:
            try:
                if http_get(f"{server.base}/api/health")[0] == status:
                    return
            except NOT_UP_YET:
                pass
        time.sleep(0.1)  # polling a condition, bounded by the deadline


@contextmanager
def running_gunicorn(
    env: dict[str, str], log_dir: Path, *, health_status: int = 200
) -> Iterator[Gunicorn]:
    """A gunicorn whose every worker (``WEB_CONCURRENCY``) is up and whose ``/api/health``
    answers ``health_status``; stopped on exit."""
    server = start_gunicorn(env, log_dir)
    try:
        wait_until_serving(
            server, workers=int(env.get("WEB_CONCURRENCY", "3")), status=health_status
        )
        yield server
    finally:
        server.stop()


# Inherited variables a served test site never takes from the suite's environment: the suite's
# database and Redis, and what would change how gunicorn serves or where its metrics go.
_NOT_INHERITED = {"DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "METRICS_TOKEN"}


def server_env(
    tmp: Path, overrides: Mapping[str, str], *, keep_redis: bool = False
) -> dict[str, str]:
    """The environment of a served test site: this process's without the suite's database,
    Redis (unless ``keep_redis``), metrics directory and token, or ``GUNICORN_*`` tuning; in
    development mode with DEBUG off, its SQLite database and ``RUN_DIR`` in ``tmp``; then
    ``overrides``."""
    dropped = _NOT_INHERITED - ({"REDIS_URL"} if keep_redis else set())
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in dropped and not k.startswith("GUNICORN_")
        },
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "RUN_DIR": str(tmp / "run"),
        **overrides,
    }


def manage(env: Mapping[str, str], *command: str) -> None:
    """``manage.py <command>`` in ``env``; a failure shows the command's output."""
    done = subprocess.run(  # noqa: S603 - this interpreter, the project's manage.py
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=MANAGE_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )


@contextmanager
def running_site(
    tmp: Path,
    overrides: Mapping[str, str],
    *,
    keep_redis: bool = False,
    then: Sequence[Sequence[str]] = (),
) -> Iterator[Gunicorn]:
    """A real gunicorn on its own SQLite database in ``tmp`` (``server_env``), whichever
    database the suite runs on: ``migrate`` first, then the manage.py commands of ``then``
    (e.g. ``[["seed_demo"]]``), then ``running_gunicorn`` (every worker ready and
    ``/api/health`` answering 200); stopped on exit. A ``PROMETHEUS_MULTIPROC_DIR`` in
    ``overrides`` is created if missing."""
    env = server_env(tmp, overrides, keep_redis=keep_redis)
    manage(env, "migrate", "--noinput", "-v0")
    for command in then:
        manage(env, *command)
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    with running_gunicorn(env, tmp) as gunicorn:
        yield gunicorn
