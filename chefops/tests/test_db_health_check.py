"""The PostgreSQL backend's health check (chefops/db/postgresql/base.py): no round trip while
the idle connection's socket is quiet, Django's ``SELECT 1`` (and a new connection) as soon as
the server ended it or the client side closed it."""

from __future__ import annotations

import select
from typing import Any

import pytest
from django.db import close_old_connections, connection

from chefops.db.postgresql.base import idle_socket_is_quiet
from chefops.tests.test_faults import terminate_backends

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Checks:
    """Counts Django's health-check round trips (``is_usable``) on this thread's connection."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = connection.is_usable

        def counted() -> bool:
            self.count += 1
            return bool(original())

        monkeypatch.setattr(connection, "is_usable", counted)


def next_request() -> int:
    """What a request does: the start-of-request bookkeeping, then a query; the backend pid."""
    close_old_connections()  # request_started's receiver
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def wait_until_readable(conn: Any) -> None:
    """Until the server's goodbye reached the idle socket (an event, not a delay)."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    assert poller.poll(30_000), "the terminated connection's socket never became readable"


def test_a_quiet_connection_is_used_without_a_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    db: Any = connection
    assert connection.vendor == "postgresql" and db.health_check_enabled
    first = next_request()
    checks = Checks(monkeypatch)
    for _ in range(5):
        assert next_request() == first  # the same persistent connection
        assert not db.health_check_probed
    assert checks.count == 0
    assert idle_socket_is_quiet(db.connection)


def server_ends(db: Any, pid: int) -> None:
    assert terminate_backends("pid = %s", [pid]) == 1
    wait_until_readable(db.connection)


def client_closes(db: Any, pid: int) -> None:
    db.connection.close()


@pytest.mark.parametrize("end", [server_ends, client_closes], ids=["server-ended", "client-closed"])
def test_an_ended_connection_is_replaced_before_the_query(
    monkeypatch: pytest.MonkeyPatch, end: Any
) -> None:
    db: Any = connection
    pid = next_request()
    checks = Checks(monkeypatch)
    end(db, pid)
    assert not idle_socket_is_quiet(db.connection)
    assert next_request() != pid  # reconnected: the request did not fail
    assert checks.count == 1
