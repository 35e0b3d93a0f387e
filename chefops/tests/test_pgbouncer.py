"""PgBouncer in transaction mode (README "Scaling"): the harness, the settings, and proof that a
run with DB_PGBOUNCER=true (bin/ci.sh's PgBouncer step) really goes through PgBouncer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from chefops.ops.joblocks import acquire_lease, release_lease
from chefops.testing.pgbouncer import pgbouncer_binary, running_pgbouncer

ROOT = Path(__file__).resolve().parents[2]


def _admin(host: str, port: int, query: str) -> list[tuple[Any, ...]]:
    """A query to PgBouncer's admin console (simple protocol only: a client-side cursor)."""
    user = settings.DATABASES["default"]["USER"] or "postgres"
    with psycopg.connect(
        host=host,
        port=port,
        user=user,
        dbname="pgbouncer",
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
        connect_timeout=5,
    ) as admin:
        return list(admin.execute(query).fetchall())


def _settings_of(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; print(json.dumps({'cursors': "
        "d.get('DISABLE_SERVER_SIDE_CURSORS', False), 'options': d['OPTIONS'], "
        "'max_age': d['CONN_MAX_AGE']}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "chefops.settings", **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_pgbouncer_mode_keeps_no_state_between_transactions() -> None:
    url = "postgres://probe@127.0.0.1:1/probe"
    on = _settings_of({"DATABASE_URL": url, "DB_PGBOUNCER": "true", "DB_POOL": "true"})
    assert on["cursors"] is True
    assert on["options"]["prepare_threshold"] is None  # never prepared: psycopg's "None"
    assert on["options"]["server_side_binding"] is True  # binding alone keeps no state
    # (16 - (2 Celery processes + beat) x 2) / 3 web workers (chefops/dbbudget.py)
    assert on["options"]["pool"] == {"min_size": 1, "max_size": 3, "timeout": 2.0}
    assert on["max_age"] == 0  # a pool excludes persistent connections
    off = _settings_of({"DATABASE_URL": url, "DB_PGBOUNCER": "false", "DB_POOL": "false"})
    assert off["cursors"] is False
    assert "pool" not in off["options"]
    # A direct connection prepares what it runs often (chefops/settings.py, issue #18).
    assert off["options"]["server_side_binding"] is True
    assert off["options"]["prepare_threshold"] == 5
    direct = {"DATABASE_URL": url, "DB_PGBOUNCER": "false", "DB_POOL": "false"}
    never = _settings_of({**direct, "DB_PREPARE_THRESHOLD": "0"})
    assert "prepare_threshold" not in never["options"]  # Django's default: None, never
    client_side = _settings_of({**direct, "DB_SERVER_SIDE_BINDING": "false"})
    assert "server_side_binding" not in client_side["options"]
    assert "prepare_threshold" not in client_side["options"]
    # SQLite: neither applies.
    sqlite = _settings_of({"DATABASE_URL": "sqlite:///:memory:", "DB_PGBOUNCER": "true"})
    assert "pool" not in sqlite["options"] and sqlite["cursors"] is False
    assert "server_side_binding" not in sqlite["options"]
    assert "prepare_threshold" not in sqlite["options"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_harness_starts_a_pgbouncer_in_transaction_mode_and_stops_it() -> None:
    try:
        pgbouncer_binary()
    except RuntimeError as exc:
        if os.environ.get("CI"):  # bin/ci.sh installs it first: missing there is a failure
            raise
        pytest.skip(str(exc))
    db = settings.DATABASES["default"]
    user = db["USER"] or "postgres"
    url = f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    with running_pgbouncer(url) as bouncer:
        config = {row[0]: row[1] for row in _admin("127.0.0.1", bouncer.port, "SHOW CONFIG")}
        assert config["pool_mode"] == "transaction"
        with psycopg.connect(
            bouncer.url_for(url), autocommit=True, prepare_threshold=None, connect_timeout=5
        ) as conn:
            # Any database name is forwarded (the per-run test database here).
            assert conn.execute("SELECT current_database()").fetchone() == (db["NAME"],)
        port = bouncer.port
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1", port=port, user=user, dbname="postgres", connect_timeout=2
        )


@pytest.mark.postgres
@pytest.mark.skipif(not settings.DB_PGBOUNCER, reason="only in a run with DB_PGBOUNCER=true")
def test_this_run_reaches_postgresql_through_pgbouncer() -> None:
    db = settings.DATABASES["default"]
    pools = _admin(db["HOST"], int(db["PORT"]), "SHOW POOLS")
    assert any(row[0] == db["NAME"] and row[-1] == "transaction" for row in pools), pools


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_retention_lease_holds_across_connections_and_transactions() -> None:
    """The lease is a row: another connection (another server connection behind PgBouncer)
    sees it taken until it is released, whichever connections ran the two statements."""
    assert acquire_lease("retention_purge", "first", ttl=timedelta(hours=1))
    seen: list[bool] = []

    def other_worker() -> None:
        try:
            seen.append(acquire_lease("retention_purge", "second", ttl=timedelta(hours=1)))
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    thread.join(timeout=120)
    assert seen == [False]
    release_lease("retention_purge", "first")
    with transaction.atomic():
        assert acquire_lease("retention_purge", "second", ttl=timedelta(hours=1))
    with connection.cursor() as cursor:  # no session-level advisory lock is held anywhere
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        )
        assert cursor.fetchone() == (0,)
