"""A throwaway PgBouncer in transaction mode in front of the test PostgreSQL (README "Scaling").

``python -m chefops.testing.pgbouncer -- pytest <paths>`` starts Debian's ``pgbouncer`` on a
free loopback port (configuration, auth file, log and pid file in a private temporary
directory), in transaction mode, with every database name forwarded to the server of
``DATABASE_URL`` (``* = host=… port=…``: pytest-django's per-run test database included). It
waits until a connection through it answers, runs the command with ``DATABASE_URL`` pointing at
PgBouncer and ``DB_PGBOUNCER=true``, stops PgBouncer, and drops this run's test database
directly on the server: through PgBouncer the drop would wait on the server connections it
keeps, so the command runs with ``--reuse-db`` and the harness drops the database at the end.

Only loopback addresses are used; the server must accept the URL's user without a password
from 127.0.0.1 (as CI's PostgreSQL does), since the auth file holds no secret.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class PgBouncer:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    def url_for(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by PgBouncer's."""
        parts = urlsplit(database_url)
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{self.port}"))

    def log(self) -> str:
        path = self.workdir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if not found:
        raise RuntimeError(
            "pgbouncer is not installed: run bin/ensure-pgbouncer.sh (apt-get install pgbouncer)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pgbouncer_run_as() -> str | None:
    """The account PgBouncer must switch to: it refuses to run as root."""
    return "postgres" if os.geteuid() == 0 else None


def prepare_workdir(workdir: Path, user: str) -> None:
    """``workdir`` readable by the PgBouncer account, with an auth file that lets ``user`` in
    without a password (``auth_type = trust``: the file holds no secret)."""
    run_as = pgbouncer_run_as()
    if run_as:
        shutil.chown(workdir, user=run_as, group=run_as)
    workdir.chmod(0o755)
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')


def pgbouncer_config(
    *,
    port: int,
    workdir: Path,
    server_port: int,
    user: str,
    server_host: str = "127.0.0.1",
    pool_size: int = 20,
    server_idle_timeout: int = 10,
    run_as: str | None = None,
) -> str:
    """The configuration of a PgBouncer in transaction mode on 127.0.0.1:``port``, every
    database name forwarded to ``server_host:server_port``, its auth file, log and pid file in
    ``workdir`` (``prepare_workdir``). At most ``pool_size`` server connections per database,
    whatever the users and however many clients connect (500); ``run_as`` names the account it
    switches to when started as root (``pgbouncer_run_as``). Used by the test harness here and
    by ``make scale`` (bench/scale.py)."""
    lines = [
        "[databases]",
        f"* = host={server_host} port={server_port}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "pool_mode = transaction",
        "auth_type = trust",
        f"auth_file = {workdir / 'userlist.txt'}",
        f"logfile = {workdir / 'pgbouncer.log'}",
        f"pidfile = {workdir / 'pgbouncer.pid'}",
        f"admin_users = {user}",
        "max_client_conn = 500",
        # Server connections: the budget a managed plan would give.
        f"default_pool_size = {pool_size}",
        f"max_db_connections = {pool_size}",
        "reserve_pool_size = 0",
        f"server_idle_timeout = {server_idle_timeout}",
        # psycopg sends none of these, but a client that does must not be refused.
        "ignore_startup_parameters = extra_float_digits,options",
    ]
    if run_as:
        lines.append(f"user = {run_as}")
    return "\n".join(lines) + "\n"


def _ready(port: int, user: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=user, dbname="postgres", connect_timeout=2
        ) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


@contextmanager
def running_pgbouncer(database_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in front of ``database_url``'s server until the block ends."""
    parts = urlsplit(database_url)
    user = parts.username or "postgres"
    binary = pgbouncer_binary()
    workdir = Path(tempfile.mkdtemp(prefix="chefops-pgbouncer-"))
    prepare_workdir(workdir, user)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # another process may take the "free" port meanwhile
            port = _free_port()
            config = workdir / "pgbouncer.ini"
            config.write_text(
                pgbouncer_config(
                    port=port,
                    workdir=workdir,
                    server_host=parts.hostname or "127.0.0.1",
                    server_port=parts.port or 5432,
                    user=user,
                    run_as=pgbouncer_run_as(),
                )
            )
            proc = subprocess.Popen(  # noqa: S603 - the installed pgbouncer, our config
                [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while proc.poll() is None and time.monotonic() < deadline:
                if _ready(port, user):
                    break
                time.sleep(0.1)
            if proc.poll() is None and _ready(port, user):
                break
            _stop(proc)
            proc = None
        if proc is None:
            log = (workdir / "pgbouncer.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pgbouncer did not start; its log ends with:\n{log}")
        yield PgBouncer(port, workdir, proc)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drop_database(database_url: str, name: str) -> None:
    """``DROP DATABASE … WITH (FORCE)`` on the server itself (not through PgBouncer)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    with psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.stderr.write("usage: python -m chefops.testing.pgbouncer -- COMMAND...\n")
        return 2
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.stderr.write("chefops.testing.pgbouncer: DATABASE_URL must name PostgreSQL\n")
        return 2
    # The run's id fixes the name of its test database (chefops/settings.py), which the
    # harness drops at the end.
    run_id = os.environ.setdefault("CHEFOPS_TEST_RUN_ID", uuid.uuid4().hex[:12])
    db_name = urlsplit(database_url).path.lstrip("/")
    test_db = f"test_{db_name}_{run_id}"[:63]
    try:
        with running_pgbouncer(database_url) as bouncer:
            sys.stdout.write(f"PgBouncer (transaction mode) on 127.0.0.1:{bouncer.port}\n")
            sys.stdout.flush()
            env = {
                **os.environ,
                "DATABASE_URL": bouncer.url_for(database_url),
                "DB_PGBOUNCER": "true",
            }
            return subprocess.call(argv, env=env)  # noqa: S603 - the caller's own command
    finally:
        drop_database(database_url, test_db)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
