"""`make run` (bin/run-local.sh) as real processes on SQLite: one instance per RUN_DIR and per
port, a second one refused before it touches anything; the demo data loaded only into an
empty database, or on purpose (SEED=1, `make reset`); SIGTERM and Ctrl-C stop every process
it started; a quiet start (logins and URLs, no warnings).

Each instance gets a temporary RUN_DIR (filesystem broker, worker log, lock), a temporary
SQLite DATABASE_URL and a port the kernel just handed out; REDIS_URL is empty, so the worker
uses the filesystem broker as on a fresh clone. Every wait polls a condition under a generous
deadline: a busy machine makes start-up slow, never the test wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from chefops.testing.factories import CateringFactory, UserFactory
from chefops.testing.gunicorn import ROOT, free_port
from companies.models import Company, User

SCRIPT = ROOT / "bin" / "run-local.sh"
DEADLINE_SECONDS = 300  # importing Django alone took 5.8 s at load 14
# A refusal runs bash, flock and at most one Python without Django: an instance still
# running after this long was not refused.
REFUSAL_SECONDS = 60
PASSWORD = "kitchen-rocket-91"
# What the inherited environment must not decide for `make run` (pytest runs with
# DJANGO_ENV=test, a developer's shell may point at PostgreSQL/Redis or another RUN_DIR).
INHERITED = {
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_ENV",
    "RUN_DIR",
    "HOST",
    "PORT",
    "SEED",
    "DJANGO_ADMIN_EMAIL",
    "DJANGO_ADMIN_PASSWORD",
    "PROMETHEUS_MULTIPROC_DIR",
    "CHEFOPS_TEST_RUN_ID",
}


def local_env(state: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env.update(
        DJANGO_ENV="development",
        DATABASE_URL=f"sqlite:///{state / 'db.sqlite3'}",
        # Empty, not unset: a REDIS_URL in the checkout's .env must not fill the gap.
        REDIS_URL="",
        RUN_DIR=str(state / "run"),
        BACKUP_DIR=str(state / "backups"),
        ARCHIVE_DIR=str(state / "archive"),
        HOST="127.0.0.1",
        PORT=str(port),
        STOP_TIMEOUT="60",
        START_TIMEOUT=str(DEADLINE_SECONDS),
        **extra,
    )
    return env


@dataclass
class Instance:
    """A `bin/run-local.sh` in a session of its own: its session id is its pid, and every
    process it starts (worker, beat, runserver) stays in that session."""

    proc: subprocess.Popen[bytes]
    out: Path
    env: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def run_dir(self) -> Path:
        return Path(self.env["RUN_DIR"])

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def failure(self, what: str) -> AssertionError:
        log = self.run_dir / "worker.log"
        worker = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        return AssertionError(f"{what}\n--- output:\n{self.output()}\n--- worker.log:\n{worker}")


def start(env: dict[str, str], out: Path, *args: str) -> Instance:
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # as a terminal's job: Ctrl-C goes to this group
            # As from an interactive shell: Ctrl-C and SIGTERM at their defaults. pytest may
            # itself run with SIGINT ignored (a background job of a script, as `.ci/run` starts
            # it), and bash cannot trap a signal ignored on entry.
            preexec_fn=_default_signals,
        )
    return Instance(proc, out, env)


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def run_to_end(
    env: dict[str, str], out: Path, *args: str, timeout: float = REFUSAL_SECONDS
) -> tuple[int, str]:
    """An instance that is expected to exit by itself (a refusal, a reset)."""
    instance = start(env, out, *args)
    try:
        code = instance.proc.wait(timeout=timeout)
    finally:
        stop_group(instance)
    assert not session_members(instance.proc.pid), "a refused instance left a process behind"
    return code, instance.output()


def stop_group(instance: Instance) -> None:
    """Test clean-up only: whatever is still in the instance's session is killed."""
    for pid in session_members(instance.proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if instance.proc.poll() is None:
        instance.proc.kill()
        instance.proc.wait()


def request(
    base: str, path: str, *, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}{path}", data=data, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=120) as res:  # noqa: S310 - loopback http
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def login(base: str, email: str, password: str) -> tuple[int, Any]:
    return request(base, "/api/auth/login", body={"email": email, "password": password})


def _stat(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone between the listing and the read
        return None
    return raw.rpartition(")")[2].split()  # fields after the command name


def session_members(sid: int) -> list[int]:
    """Live processes of the session (zombies are dead: only their parent's wait is left)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            # fields: state, ppid, pgrp, session, ...
            if fields and fields[0] != "Z" and int(fields[3]) == sid:
                members.append(int(entry.name))
    return members


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_until(condition: Any, instance: Instance, what: str, *, running: bool = True) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if running and instance.proc.poll() is not None:
            code = instance.proc.returncode
            raise instance.failure(f"run-local.sh exited ({code}) before {what}")
        if time.monotonic() > deadline:
            raise instance.failure(f"no {what} within {DEADLINE_SECONDS} s")
        time.sleep(0.1)  # polling a condition, bounded by the deadline


def wait_until_serving(instance: Instance) -> None:
    """Health answers, the logins and URLs are printed, and the worker and beat are up."""

    def ready() -> bool:
        log = instance.run_dir / "worker.log"
        worker = log.read_text(errors="replace") if log.exists() else ""
        if "ChefOps is running" not in instance.output() or " ready." not in worker:
            return False
        if "beat: Starting" not in worker:
            return False
        try:
            return request(instance.base, "/api/health")[0] == 200
        except OSError:
            return False

    wait_until(ready, instance, "readiness")


def stops_everything(instance: Instance, sig: signal.Signals, *, to_group: bool) -> None:
    """Send ``sig`` (to the script, or to its process group as a terminal's Ctrl-C does) and
    check by pid that the script, the worker, beat and runserver are all gone."""
    sid = instance.proc.pid
    started = session_members(sid)
    commands = " | ".join(command_line(pid) for pid in started)
    assert "celery -A chefops worker" in commands and "runserver" in commands, commands
    assert len(started) >= 4, commands  # script, worker, its beat process, runserver
    if to_group:
        os.killpg(sid, sig)
    else:
        instance.proc.send_signal(sig)
    wait_until(lambda: not session_members(sid), instance, "stop", running=False)
    instance.proc.wait(timeout=DEADLINE_SECONDS)
    # It dies of the signal it got, so make reports "Interrupt"/"Terminated" as for any job.
    assert instance.proc.returncode == -sig, instance.failure("unexpected exit status")
    assert "Stopped." in instance.output()


def companies(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return sorted(conn.execute("SELECT id, email FROM companies_company").fetchall())


@dataclass
class Running:
    instance: Instance
    state: Path
    token: str  # of the company registered on the running instance
    demo_ids: list[tuple[str, str]]  # the companies before the instance started

    @property
    def db(self) -> Path:
        return self.state / "db.sqlite3"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`make reset` on a fresh database, then `make run` on it; a company registered since."""
    state = tmp_path_factory.mktemp("run-local")
    env = local_env(state, free_port())
    code, out = run_to_end(env, state / "reset.out", "reset", timeout=DEADLINE_SECONDS)
    assert code == 0, out
    demo_ids = companies(state / "db.sqlite3")
    instance = start(env, state / "first.out")
    try:
        wait_until_serving(instance)
        status, body = request(
            instance.base,
            "/api/caterings",
            body={
                "name": "Registered While Running",
                "email": "registered@example.com",
                "password": PASSWORD,
                "taxId": "30-00000009-9",
                "dailyCapacity": 40,
            },
        )
        assert status == 201, body
        status, body = login(instance.base, "registered@example.com", PASSWORD)
        assert status == 200, body
        yield Running(instance, state, body["accessToken"], demo_ids)
    finally:
        stop_group(instance)


def intact(running: Running) -> None:
    """The first instance's data and token still work: nothing wiped or reseeded."""
    rows = companies(running.db)
    assert len(rows) == len(running.demo_ids) + 1
    assert set(running.demo_ids) < set(rows)
    status, body = request(running.instance.base, "/api/auth/session-status", token=running.token)
    assert status == 200, body


@pytest.mark.slow
def test_reset_seeds_and_a_start_on_a_non_empty_database_keeps_the_data_quietly(
    running: Running,
) -> None:
    reset_out = (running.state / "reset.out").read_text()
    assert "Deleted the SQLite database" in reset_out
    assert "consultora.employee@example.com" in reset_out
    assert len(running.demo_ids) == 7
    out = running.instance.output()
    # The demo set from `make reset` was kept (same rows, same ids), not wiped and reloaded.
    assert "Demo data not reloaded: the database already has 7 companies" in out
    assert {email for _, email in running.demo_ids} < {email for _, email in companies(running.db)}
    assert login(running.instance.base, "delicias@example.com", "password123")[0] == 200
    # Quiet: the logins and URLs, no warnings, no migration or schedule chatter.
    base = running.instance.base
    for expected in (
        "Demo logins (password password123):",
        "delicias.manager@example.com",
        f"API      {base}/api/health",
        f"Docs     {base}/api/docs",
        f"Admin    {base}/admin/",
        "admin@chefops.local / chefops-admin",
    ):
        assert expected in out
    # The worker takes tasks from the filesystem broker under RUN_DIR (beat sends one every 5 s).
    log = running.instance.run_dir / "worker.log"
    wait_until(
        lambda: "Task outbox.dispatch[" in log.read_text() and "succeeded" in log.read_text(),
        running.instance,
        "outbox dispatch run by the worker",
    )
    # Its exchange bindings live in RUN_DIR too, not in a `control/` of the working directory.
    assert list((running.instance.run_dir / "celery-control").glob("*.exchange"))
    for output in (out, reset_out):
        for noise in ("W040", "WARNING", "Warning", "Applying", "beat schedule synced"):
            assert noise not in output, output


@pytest.mark.slow
def test_a_second_instance_with_the_same_run_dir_refuses_before_touching_anything(
    running: Running, tmp_path: Path
) -> None:
    log = running.instance.run_dir / "worker.log"
    before = log.read_bytes()
    assert before
    # The most destructive second start there is: reseed requested, another free port.
    env = {**running.instance.env, "PORT": str(free_port()), "SEED": "1"}
    code, out = run_to_end(env, tmp_path / "second.out")
    assert code == 1, out
    assert "another `make run` is already running" in out
    assert f"(pid {running.instance.proc.pid})" in out
    assert "Demo logins" not in out
    intact(running)
    after = log.read_bytes()
    assert after.startswith(before) and b"\0" not in after  # the first worker's log, untouched
    assert running.instance.proc.poll() is None


@pytest.mark.slow
def test_a_reset_refuses_while_an_instance_runs(running: Running, tmp_path: Path) -> None:
    code, out = run_to_end(running.instance.env, tmp_path / "reset.out", "reset")
    assert code == 1, out
    assert "another `make run` is already running" in out
    assert running.db.exists()
    intact(running)


@pytest.mark.slow
def test_a_second_instance_on_a_taken_port_refuses_before_touching_anything(
    running: Running, tmp_path: Path
) -> None:
    env = local_env(tmp_path, int(running.instance.env["PORT"]))
    code, out = run_to_end(env, tmp_path / "second.out")
    assert code == 1, out
    assert f"127.0.0.1:{running.instance.env['PORT']} is not free" in out
    assert not (tmp_path / "db.sqlite3").exists()  # not even migrated
    assert not (tmp_path / "run" / "worker.log").exists()
    intact(running)

    # A port somebody else listens on, too (not another `make run`).
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        env = local_env(tmp_path, other.getsockname()[1])
        code, out = run_to_end(env, tmp_path / "third.out")
    assert code == 1, out
    assert "is not free" in out
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.slow
def test_sigterm_stops_everything_and_seed_1_reloads_then_ctrl_c_stops_everything(
    running: Running,
) -> None:
    stops_everything(running.instance, signal.SIGTERM, to_group=False)
    # The lock went with the processes: the next start is not refused, and SEED=1 reloads.
    env = {**running.instance.env, "SEED": "1"}
    second = start(env, running.state / "seed.out")
    try:
        wait_until_serving(second)
        out = second.output()
        assert "companies: 3 caterings, 4 clients, 21 users" in out
        assert "consultora.employee@example.com" in out
        rows = companies(running.db)
        assert len(rows) == 7 and not set(rows) & set(running.demo_ids)  # new rows
        assert "registered@example.com" not in {email for _, email in rows}
        assert login(second.base, "registered@example.com", PASSWORD)[0] == 401
        assert login(second.base, "sabores@example.com", "password123")[0] == 200
        stops_everything(second, signal.SIGINT, to_group=True)
    finally:
        stop_group(second)


# --- The command `make run` uses (no processes) -------------------------------------------


def test_seed_if_empty_loads_an_empty_database(db: None) -> None:
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert Company.objects.count() == 7
    assert "consultora.employee@example.com" in out.getvalue()


def test_seed_if_empty_keeps_any_company_even_a_deleted_one(db: None) -> None:
    deleted = CateringFactory.create(deleted_at=timezone.now())
    UserFactory.create(company=deleted)
    users = set(User.objects.values_list("pk", flat=True))
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert list(Company.objects.values_list("pk", flat=True)) == [deleted.pk]
    assert set(User.objects.values_list("pk", flat=True)) == users
    text = out.getvalue()
    assert "Demo data not reloaded: the database already has 1 company " in text
    assert "Demo logins" not in text  # none of the demo users exists


def test_seed_if_empty_lists_the_demo_logins_that_still_exist(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    User.objects.filter(email="delicias.manager@example.com").delete()
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    text = out.getvalue()
    assert "already has 7 companies" in text
    assert "delicias@example.com" in text
    assert "delicias.manager@example.com" not in text
