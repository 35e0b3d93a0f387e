from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from chefops.testing.gunicorn import free_port, http_get, running_gunicorn, server_env

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _no_remembered_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without a database probe remembered by an earlier one."""
    from chefops import health

    monkeypatch.setattr(health, "_database_ok_until", 0.0)


@pytest.mark.django_db
def test_health_ok() -> None:
    res = APIClient().get("/api/health")
    assert res.status_code == 200
    body = res.json()
    assert set(body) == {"status", "timestamp", "database", "uptime", "version"}
    assert body["status"] == "ok" and body["database"] == "connected"
    assert ISO_MS.match(body["timestamp"])
    assert isinstance(body["uptime"], (int, float)) and body["uptime"] >= 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_health_probes_the_database_once_and_survives_a_dropped_connection() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chefops import health

    client = APIClient()
    assert client.get("/api/health").status_code == 200

    def next_request(health_checks: bool) -> tuple[dict[str, str], int]:
        health._database_ok_until = 0.0  # probe every time
        # what the start of a request does to a persistent connection (close_old_connections)
        db: Any = connection  # the health-check flags are not in django-stubs
        db.health_check_enabled, db.health_check_done = health_checks, False
        with CaptureQueriesContext(connection) as queries:
            res = client.get("/api/health")
        assert res.status_code == 200
        return res.json(), len(queries.captured_queries)

    # The backend's health check found the idle socket quiet and made no round trip: the view's
    # SELECT 1 is the probe, the only statement (chefops/db/postgresql/base.py).
    assert next_request(health_checks=True)[1] == 1
    assert next_request(health_checks=False)[1] == 1
    assert connection.connection is not None
    connection.connection.close()  # the server dropped the connection between requests
    body, _ = next_request(health_checks=True)
    assert body["database"] == "connected"


@pytest.mark.django_db
def test_health_reuses_a_success_of_the_last_second_never_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chefops import health

    client = APIClient()
    assert client.get("/api/health").json()["database"] == "connected"
    assert health._database_ok_until > time.monotonic()  # remembered for about a second
    assert health._database_ok_until <= time.monotonic() + health.DATABASE_OK_SECONDS
    probes: list[bool] = []

    def unreachable() -> bool:
        probes.append(False)
        return False

    monkeypatch.setattr(health, "database_ok", unreachable)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/health").json()["database"] == "connected"
    assert (probes, len(queries.captured_queries)) == ([], 0)
    # a second later the database is probed again; its failure is reported at once...
    monkeypatch.setattr(health, "_database_ok_until", time.monotonic() - 0.001)
    res = client.get("/api/health")
    assert (res.status_code, res.json()["database"]) == (503, "disconnected")
    # ...and never remembered: the next request probes again
    assert client.get("/api/health").status_code == 503
    assert probes == [False, False]
    # the readiness probe never reuses a success
    monkeypatch.setattr(health, "_database_ok_until", time.monotonic() + 60)
    assert client.get("/api/health/ready").json()["checks"]["database"] == "disconnected"


@pytest.mark.django_db
def test_health_answers_any_host_header() -> None:
    res = APIClient().get("/api/health", HTTP_HOST="10.0.0.7:8000")
    assert res.status_code == 200
    res = APIClient().get("/api/contracts", HTTP_HOST="evil.example")
    assert res.status_code == 400  # other routes still validate Host


@pytest.mark.django_db
def test_readiness_reports_each_dependency() -> None:
    res = APIClient().get("/api/health/ready")
    assert res.status_code == 200
    assert res.json()["checks"] == {
        "database": "connected",
        "cache": "connected",
        "broker": "connected",
    }


@pytest.mark.slow
def test_health_is_503_within_2s_when_the_database_is_unreachable(tmp_path: Path) -> None:
    """A real gunicorn whose DATABASE_URL points at a closed port. The claim is about the
    probe, so it is timed on a warmed server: worker boot is not part of it."""
    import json

    env = server_env(
        tmp_path,
        {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nothing",
            "WEB_CONCURRENCY": "1",
        },
    )
    with running_gunicorn(env, tmp_path, health_status=503) as gunicorn:
        for _ in range(3):
            started = time.monotonic()
            status, raw = http_get(f"{gunicorn.base}/api/health")
            elapsed = time.monotonic() - started
            assert status == 503
            body = json.loads(raw)
            assert body["status"] == "error" and body["database"] == "disconnected"
            assert elapsed < 2.5
        status, raw = http_get(f"{gunicorn.base}/api/health/ready")
        assert status == 503
        assert json.loads(raw)["checks"]["database"] == "disconnected"
