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
    conf = app.conf
    previous = (conf.broker_url, conf.broker_transport_options, conf.task_always_eager)

    def forget_pools() -> None:
        # The app keeps its connection and producer pools for the broker it first used.
        app._pool = None  # type: ignore[attr-defined]
        app.amqp._producer_pool = None

    forget_pools()
    conf.broker_url = f"redis://127.0.0.1:{port}/0"
    conf.broker_transport_options = dict(settings.REDIS_BROKER_FAIL_FAST_OPTIONS)
    conf.task_always_eager = False
    try:
        yield request.param
    finally:
        conf.broker_url, conf.broker_transport_options, conf.task_always_eager = previous
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
