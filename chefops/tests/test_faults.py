"""Outages of the broker and of the database, as a client sees them.

* Broker: a write whose transaction committed answers its success status even when the
  after-commit nudge cannot reach the broker; the event waits PENDING in the outbox and the
  next dispatch run (the beat sweep) delivers it. The broker here is real and unreachable: a
  closed port (connection refused) and a port that accepts but never answers (silent).
* Database: any request that cannot reach the database answers 503 in the error shape with a
  ``Retry-After`` header, never 500, and the next request after the database is back is
  served again (the broken connection is discarded).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from chefops.testing.factories import ContractFactory
from chefops.testing.gunicorn import free_port
from contracts.models import ContractStatus
from outbox.models import EventStatus, OutboxEvent
from outbox.services import outbox_dispatch

STRONG = "a-much-better-secret-7"
REQUEST_DEADLINE_SECONDS = 60  # a hung publish would block far longer than this


# --- broker ----------------------------------------------------------------------------------


class SilentBroker:
    """A TCP port that accepts connections (the kernel completes the handshake) and never
    answers: a broker host that hangs, the case where only socket timeouts help."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["refused", "silent"])
def unreachable_broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """The Celery app publishing to a Redis broker that cannot be reached, not eagerly, with
    the project's broker options (``REDIS_BROKER_FAIL_FAST_OPTIONS``)."""
    from chefops.celery import app

    silent = SilentBroker() if request.param == "silent" else None
    port = silent.port if silent else free_port()
    conf: Any = app.conf  # celery-types has broker_url read-only
    overrides = {
        "broker_url": f"redis://127.0.0.1:{port}/0",
        "broker_transport_options": dict(settings.REDIS_BROKER_FAIL_FAST_OPTIONS),
        "task_always_eager": False,
    }
    previous = {key: conf[key] for key in overrides}

    def forget_pools() -> None:
        # The app keeps its connection and producer pools for the broker it first used.
        amqp: Any = app.amqp
        app._pool = None  # type: ignore[attr-defined]
        amqp._producer_pool = None

    forget_pools()
    conf.update(overrides)
    try:
        yield request.param
    finally:
        conf.update(previous)
        forget_pools()
        if silent:
            silent.close()


def within_deadline(call: Callable[[], Any]) -> Any:
    """``call()`` on a thread, failing the test if it has not returned by the deadline."""
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(REQUEST_DEADLINE_SECONDS)
    assert not thread.is_alive(), f"the request did not return within {REQUEST_DEADLINE_SECONDS} s"
    if failure:
        raise failure[0]
    return outcome[0]


def _pause(cast: Any) -> tuple[Any, str]:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    return (
        lambda: cast.api(cast.client.manager).post(
            f"/api/contracts/{contract.id}/pause", {}, format="json"
        ),
        "contract.paused",
    )


def _resume(cast: Any) -> tuple[Any, str]:
    contract = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        status=ContractStatus.PAUSED,
    )
    return (
        lambda: cast.api(cast.client.manager).post(
            f"/api/contracts/{contract.id}/resume", {}, format="json"
        ),
        "contract.resumed",
    )


def _invite(cast: Any) -> tuple[Any, str]:
    body = {"email": "new.hire@example.com", "name": "New Hire", "role": "EMPLOYEE"}
    return (
        lambda: cast.api(cast.client.admin).post("/api/users", body, format="json"),
        "user.invited",
    )


def _forgot(cast: Any) -> tuple[Any, str]:
    body = {"email": cast.client.employee.email}
    return (
        lambda: APIClient().post("/api/auth/forgot-password", body, format="json"),
        "auth.password_reset_requested",
    )


def _register_catering(cast: Any) -> tuple[Any, str]:
    body = {"name": "Nuevo", "email": "nuevo@example.com", "password": STRONG, "dailyCapacity": 9}
    return (
        lambda: APIClient().post("/api/caterings", body, format="json"),
        "company.registered",
    )


def _register_client(cast: Any) -> tuple[Any, str]:
    body = {
        "name": "Cliente",
        "email": "cliente@example.com",
        "password": STRONG,
        "workMode": "ONSITE",
        "officeDays": [1, 3],
    }
    return (
        lambda: APIClient().post("/api/clients", body, format="json"),
        "company.registered",
    )


WRITES = {
    "pause": (_pause, 201),
    "resume": (_resume, 201),
    "invite": (_invite, 201),
    "forgot-password": (_forgot, 200),
    "register-catering": (_register_catering, 201),
    "register-client": (_register_client, 201),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", list(WRITES))
def test_a_committed_write_answers_success_when_the_broker_is_unreachable(
    cast: Any, unreachable_broker: str, write: str, caplog: pytest.LogCaptureFixture
) -> None:
    make, expected = WRITES[write]
    request, event_type = make(cast)
    with caplog.at_level(logging.WARNING):
        res = within_deadline(request)
    assert res.status_code == expected, res.content
    event = OutboxEvent.objects.get(event_type=event_type)
    assert event.status == EventStatus.PENDING  # stored; nobody was told about it
    nudges = [r for r in caplog.records if r.name == "chefops.outbox"]
    assert [r.getMessage().split(" (")[0] for r in nudges] == [
        "outbox: dispatcher not nudged, broker unreachable"
    ]
    assert nudges[0].exc_info is None  # one line, no traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # What the beat sweep does a few seconds later, broker or not.
    outbox_dispatch(max_batches=5)
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.last_error


@pytest.mark.django_db(transaction=True)
def test_the_retry_of_a_committed_pause_is_not_needed(cast: Any, unreachable_broker: str) -> None:
    """The original failure mode: a 500 after the commit made clients retry, and the retry was
    refused because the first attempt had worked."""
    request, _ = _pause(cast)
    assert within_deadline(request).status_code == 201
    again = within_deadline(request)
    assert (again.status_code, again.json()["message"]) == (400, "Contract is already paused")


# --- database --------------------------------------------------------------------------------

RETRY_AFTER = "5"
UNAVAILABLE = {
    "message": "The database is unavailable, please try again shortly",
    "error": "Service Unavailable",
    "statusCode": 503,
}
JWT_SECRET = "a-jwt-secret-for-the-fault-tests-of-at-least-32-bytes"


def http(
    base: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a request to a running server, error statuses included."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback http
        f"{base}{path}",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_DEADLINE_SECONDS) as res:  # noqa: S310
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def minted_access_token(secret: str) -> str:
    """A well-formed access token (valid signature, subject, company and session), as the
    server would have issued before the outage."""
    import time
    import uuid

    import jwt

    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "companyId": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.slow
def test_every_kind_of_route_answers_503_while_the_database_is_unreachable(
    tmp_path: Any,
) -> None:
    """A real gunicorn whose DATABASE_URL names a closed port: authenticated and public API
    routes, and the admin, answer 503 with Retry-After, never 500."""
    import json
    import os

    from chefops.testing.gunicorn import running_gunicorn

    env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nothing",
        "JWT_SECRET": JWT_SECRET,
        "WEB_CONCURRENCY": "1",
        "RUN_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    bearer = {"Authorization": f"Bearer {minted_access_token(JWT_SECRET)}"}
    with running_gunicorn(env, tmp_path, health_status=503) as gunicorn:
        for method_path, body, headers in (
            ("/api/contracts", None, bearer),  # authentication needs the database
            ("/api/auth/session-status", None, bearer),
            ("/api/auth/login", {"email": "a@example.com", "password": "secret-1"}, {}),
            ("/api/auth/forgot-password", {"email": "a@example.com"}, {}),
        ):
            status, res_headers, raw = http(gunicorn.base, method_path, body=body, headers=headers)
            assert status == 503, (method_path, raw)
            assert json.loads(raw) == UNAVAILABLE
            assert res_headers["Retry-After"] == RETRY_AFTER
            assert res_headers["Content-Type"] == "application/json; charset=utf-8"
        # The admin (no DRF): its session lookup fails in the view.
        status, res_headers, raw = http(
            gunicorn.base,
            "/admin/",
            headers={"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"},
        )
        assert status == 503, raw
        assert res_headers["Retry-After"] == RETRY_AFTER
        assert b"Traceback" not in raw
    assert "Internal Server Error" not in gunicorn.log()


def _conninfo(**overrides: str) -> str:
    from django.db import connection

    db = connection.settings_dict
    parts = {
        "host": db["HOST"] or "127.0.0.1",
        "port": str(db["PORT"] or 5432),
        "user": db["USER"],
        "dbname": db["NAME"],
        **overrides,
    }
    if db.get("PASSWORD"):
        parts["password"] = db["PASSWORD"]
    return " ".join(f"{key}={value}" for key, value in parts.items())


def terminate_backends(where: str, params: list[Any]) -> int:
    """``pg_terminate_backend`` from a connection of its own, waiting until each backend is
    gone (PostgreSQL 14+); returns how many were terminated."""
    import psycopg

    with psycopg.connect(_conninfo(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            f"WHERE pid <> pg_backend_pid() AND {where}",
            params,
        ).fetchall()
    return sum(1 for (done,) in rows if done)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_terminated_connection_answers_503_then_the_next_request_reconnects(
    cast: Any, settings: Any
) -> None:
    from django.db import connection

    # every request must reach the database (a cached read or principal would not)
    settings.READ_CACHE_SECONDS = settings.AUTH_CACHE_SECONDS = 0

    api = cast.api(cast.client.manager)
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    assert api.get("/api/contracts").status_code == 200
    for request, success in (
        (lambda: api.get("/api/contracts"), 200),
        (lambda: api.post(f"/api/contracts/{contract.id}/pause", {}, format="json"), 201),
    ):
        pid = connection.connection.info.backend_pid
        assert terminate_backends("pid = %s", [pid]) == 1
        # The test client skips the request-start health check: the dead socket is used.
        res = request()
        assert (res.status_code, res.json()) == (503, UNAVAILABLE)
        assert res["Retry-After"] == RETRY_AFTER
        assert connection.connection is None  # discarded: the next request reconnects
        assert request().status_code == success


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_connections_terminated_under_load_give_503_or_200_never_500(
    cast: Any, tmp_path: Any
) -> None:
    """A real gunicorn (2 workers x 2 threads, persistent health-checked connections) on the
    test database; client threads poll while every connection of the server is terminated
    again and again. Requests caught mid-query answer 503, the others are served, and the
    server is whole again afterwards."""
    import os
    import time

    from django.db import connection

    from chefops.testing.gunicorn import running_gunicorn

    app_name = "chefops-faults"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
            f"/{db['NAME']}?application_name={app_name}"
        ),
        "JWT_SECRET": settings.JWT_SECRET,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "RUN_DIR": str(tmp_path),
    }
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    env.pop("REDIS_URL", None)
    for contract_pair in range(3):
        ContractFactory.create(
            catering_company=cast.catering.company,
            client_company=cast.client.company,
            status=ContractStatus.PAUSED if contract_pair else ContractStatus.ACTIVE,
        )
    token = cast.api(cast.client.employee)._credentials["HTTP_AUTHORIZATION"]
    statuses: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    with running_gunicorn(env, tmp_path) as gunicorn:

        def poll() -> None:
            while not stop.is_set():
                status, _, _ = http(
                    gunicorn.base, "/api/contracts", headers={"Authorization": token}
                )
                with lock:
                    statuses.append(status)

        def served() -> int:
            with lock:
                return len(statuses)

        clients = [threading.Thread(target=poll, daemon=True) for _ in range(4)]
        for thread in clients:
            thread.start()
        terminated = 0
        try:
            for _ in range(15):
                # wait for traffic between two rounds (a condition, with a generous deadline)
                target, deadline = served() + 8, time.monotonic() + 120
                while served() < target:
                    assert time.monotonic() < deadline, "the server stopped answering"
                    time.sleep(0.01)
                terminated += terminate_backends(
                    "datname = %s AND application_name = %s", [db["NAME"], app_name]
                )
        finally:
            stop.set()
            for thread in clients:
                thread.join(REQUEST_DEADLINE_SECONDS)
        after = [
            http(gunicorn.base, "/api/contracts", headers={"Authorization": token})[0]
            for _ in range(4)
        ]
    assert terminated >= 15  # every round found live connections to kill
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert after == [200] * 4


class DatabaseDownMiddleware:
    """A middleware whose database query fails before any view runs."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from django.db.utils import OperationalError

        raise OperationalError("connection failed: Connection refused") from _driver_error()


def _driver_error(sqlstate: str | None = None) -> Exception:
    import psycopg

    if sqlstate is None:
        return psycopg.OperationalError("connection failed: Connection refused")
    return psycopg.errors.lookup(sqlstate)("server said no")


def test_a_middleware_that_cannot_reach_the_database_answers_503(settings: Any) -> None:
    from django.test import Client

    settings.MIDDLEWARE = [f"{__name__}.DatabaseDownMiddleware", *settings.MIDDLEWARE]
    client = Client(raise_request_exception=False)
    res = client.get("/api/contracts")
    assert (res.status_code, res.json()) == (503, UNAVAILABLE)
    assert res["Retry-After"] == RETRY_AFTER
    res = client.get("/admin/")
    assert (res.status_code, res["Content-Type"]) == (503, "text/plain; charset=utf-8")


@pytest.mark.parametrize(
    ("sqlstate", "unavailable"),
    [
        (None, True),  # the client library could not connect, or lost the connection
        ("08006", True),  # connection failure
        ("57P01", True),  # terminating connection due to administrator command
        ("57P03", True),  # the database system is starting up
        ("53300", True),  # too many connections
        ("40001", False),  # serialization failure: the statement failed, the server is fine
        ("40P01", False),  # deadlock
        ("57014", False),  # statement timeout / cancel
        ("55P03", False),  # lock not available
    ],
)
def test_which_database_errors_mean_unavailable(sqlstate: str | None, unavailable: bool) -> None:
    from django.db.utils import InterfaceError, OperationalError

    from chefops.api.errors import database_unavailable

    cause = _driver_error(sqlstate)
    wrapped = OperationalError(str(cause))  # as Django's error wrapper raises it
    wrapped.__cause__ = cause
    assert database_unavailable(wrapped) is unavailable
    assert database_unavailable(cause) is unavailable  # unwrapped, as the driver raised it
    assert database_unavailable(InterfaceError("connection already closed"))
    assert not database_unavailable(OperationalError("database is locked"))  # SQLite, busy
    assert not database_unavailable(ValueError("unrelated"))
