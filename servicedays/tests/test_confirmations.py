"""Confirm expected (client) and served (catering): reference S3/S4, §10.5, §10.6, SPEC §2.6."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection, connections, transaction

from contracts.models import Contract, ContractStatus
from outbox.models import OutboxEvent
from servicedays import jobs
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day, post_json

pytestmark = pytest.mark.django_db

DAY = date(2026, 1, 25)  # a Sunday; contract weekdays do not matter for confirmations
DEADLINE = datetime(2026, 1, 24, tzinfo=UTC)  # 24 h notice
EARLY = datetime(2026, 1, 18, 9, 15, tzinfo=UTC)  # a week before


def expected(cast: Any, day_id: Any, body: Any, user: Any = None) -> Any:
    return post_json(
        cast.api(user or cast.client.employee),
        f"/api/service-days/{day_id}/confirm-expected",
        body,
    )


def served(cast: Any, day_id: Any, body: Any, user: Any = None) -> Any:
    return post_json(
        cast.api(user or cast.catering.employee),
        f"/api/service-days/{day_id}/confirm-served",
        body,
    )


@pytest.fixture
def day(contract: Contract) -> ServiceDay:
    return make_day(contract, DAY)


# --- Expected ---------------------------------------------------------------------------------


def test_client_confirms_expected(cast: Any, contract: Contract, day: ServiceDay) -> None:
    with time_machine.travel(EARLY, tick=False):
        res = expected(cast, day.pk, {"expectedQuantity": 50})
    assert res.status_code == 201
    body = res.json()
    assert body["expectedQuantity"] == 50
    assert body["expectedConfirmedAt"] == "2026-01-18T09:15:00.000Z"
    assert body["updatedAt"] == "2026-01-18T09:15:00.000Z"
    assert body["status"] == "PENDING" and body["servedQuantity"] is None
    day.refresh_from_db()
    assert day.expected_quantity == 50 and day.expected_confirmed_at == EARLY
    event = OutboxEvent.objects.get(event_type="servicedays.expected_confirmed")
    assert (event.aggregate_type, event.aggregate_id) == ("ServiceDay", str(day.pk))
    assert event.payload == {
        "serviceDayId": str(day.pk),
        "contractId": str(contract.pk),
        "cateringCompanyId": str(cast.catering.company.pk),
        "clientCompanyId": str(cast.client.company.pk),
        "serviceDate": "2026-01-25",
        "expectedQuantity": 50,
        "confirmedAt": "2026-01-18T09:15:00.000Z",
    }
    assert event.metadata["actorUserId"] == str(cast.client.employee.pk)


@pytest.mark.parametrize(("quantity", "ok"), [(10, True), (100, True), (9, False), (101, False)])
def test_expected_range_is_inclusive(cast: Any, day: ServiceDay, quantity: int, ok: bool) -> None:
    with time_machine.travel(EARLY, tick=False):
        res = expected(cast, day.pk, {"expectedQuantity": quantity})
    if ok:
        assert res.status_code == 201
    else:
        assert res.status_code == 400
        assert res.json()["message"] == "Expected quantity must be between 10 and 100"
        assert not OutboxEvent.objects.exists()


def test_expected_only_once(cast: Any, day: ServiceDay) -> None:
    with time_machine.travel(EARLY, tick=False):
        assert expected(cast, day.pk, {"expectedQuantity": 50}).status_code == 201
        res = expected(cast, day.pk, {"expectedQuantity": 75}, cast.client.admin)
    assert res.status_code == 400
    assert res.json()["message"] == (
        "Expected quantity has already been confirmed and cannot be changed"
    )
    day.refresh_from_db()
    assert day.expected_quantity == 50


def test_expected_is_frozen_after_the_fallback(cast: Any, day: ServiceDay) -> None:
    with time_machine.travel(DEADLINE, tick=False):
        assert jobs.service_days_apply_fallback().applied == 1
        res = expected(cast, day.pk, {"expectedQuantity": 50})
    assert res.status_code == 400
    assert res.json()["message"] == (
        "Expected quantity has already been confirmed and cannot be changed"
    )


def test_confirmed_day_is_frozen(cast: Any, contract: Contract) -> None:
    day = make_day(contract, DAY, status=ServiceDayStatus.CONFIRMED, served_quantity=40)
    with time_machine.travel(EARLY, tick=False):
        res = expected(cast, day.pk, {"expectedQuantity": 50})
    assert res.json()["message"] == "ServiceDay is already confirmed"


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (datetime(2026, 1, 23, 23, 59, 59, tzinfo=UTC), True),
        (DEADLINE, True),  # exactly at the deadline is still allowed
        (datetime(2026, 1, 24, 0, 0, 0, 1000, tzinfo=UTC), False),
        (datetime(2026, 1, 24, 12, tzinfo=UTC), False),  # service 12 h away, 24 h notice
        (datetime(2026, 1, 26, tzinfo=UTC), False),  # past day
    ],
)
def test_notice_deadline_boundary(cast: Any, day: ServiceDay, now: datetime, ok: bool) -> None:
    with time_machine.travel(now, tick=False):
        res = expected(cast, day.pk, {"expectedQuantity": 50})
    if ok:
        assert res.status_code == 201
    else:
        assert res.status_code == 400
        assert res.json()["message"] == (
            "Notice period of 24 hours has passed. Deadline was 2026-01-24T00:00:00.000Z"
        )


def test_zero_hour_notice_deadline_is_the_start_of_the_day(cast: Any) -> None:
    contract = make_contract(cast, notice_period_hours=0)
    day = make_day(contract, DAY)
    with time_machine.travel(datetime(2026, 1, 25, 0, 0, 1, tzinfo=UTC), tick=False):
        res = expected(cast, day.pk, {"expectedQuantity": 50})
    assert res.json()["message"] == (
        "Notice period of 0 hours has passed. Deadline was 2026-01-25T00:00:00.000Z"
    )


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (
            {"expectedQuantity": "30"},
            [
                "expectedQuantity must not be less than 0",
                "expectedQuantity must be an integer number",
            ],
        ),
        ({"expectedQuantity": -1}, ["expectedQuantity must not be less than 0"]),
        ({"expectedQuantity": 2.5}, ["expectedQuantity must be an integer number"]),
        (
            {"quantity": 20},
            [
                "property quantity should not exist",
                "expectedQuantity must not be less than 0",
                "expectedQuantity must be an integer number",
            ],
        ),
    ],
)
def test_expected_body_validation(
    cast: Any, day: ServiceDay, body: dict[str, Any], messages: list[str]
) -> None:
    res = expected(cast, day.pk, body)
    assert res.status_code == 400
    assert res.json() == {"message": messages, "error": "Bad Request", "statusCode": 400}


def test_expected_check_order(cast: Any, contract: Contract) -> None:
    # type guard before the id: a caterer with a bad id gets 403
    res = expected(cast, "not-a-uuid", {"expectedQuantity": 1}, cast.catering.admin)
    assert res.status_code == 403
    assert res.json()["message"] == "This action is restricted to CLIENT companies"
    # id before body
    res = expected(cast, "not-a-uuid", {"bogus": 1})
    assert res.json()["message"] == "Validation failed (uuid is expected)"
    # body before existence
    unknown = "5d6c3b1a-0000-4000-8000-000000000001"
    assert expected(cast, unknown, {}).status_code == 400
    res = expected(cast, unknown, {"expectedQuantity": 1})
    assert res.status_code == 404
    assert res.json()["message"] == f"Service day with id {unknown} not found"
    # party before contract status (a non-party learns nothing about the contract)
    paused = make_contract(cast, status=ContractStatus.PAUSED)
    paused_day = make_day(paused, DAY)
    res = expected(cast, paused_day.pk, {"expectedQuantity": 50}, cast.other_client.admin)
    assert res.status_code == 403
    assert res.json()["message"] == "Only the client company can confirm expected quantity"
    # contract status before day status and rules
    with time_machine.travel(EARLY, tick=False):
        res = expected(cast, paused_day.pk, {"expectedQuantity": 5000})
    assert res.status_code == 400
    assert res.json()["message"] == "Contract is PAUSED, only ACTIVE contracts allow this operation"


def test_terminated_contract(cast: Any) -> None:
    day = make_day(make_contract(cast, status=ContractStatus.TERMINATED), DAY)
    with time_machine.travel(EARLY, tick=False):
        res = expected(cast, day.pk, {"expectedQuantity": 50})
    assert res.json()["message"] == (
        "Contract is TERMINATED, only ACTIVE contracts allow this operation"
    )


@pytest.mark.parametrize("tenant", ["other_client", "other_catering", "catering"])
def test_it_validates_ownership_for_expected(cast: Any, day: ServiceDay, tenant: str) -> None:
    with time_machine.travel(EARLY, tick=False):
        res = expected(cast, day.pk, {"expectedQuantity": 50}, getattr(cast, tenant).employee)
    assert res.status_code == 403
    day.refresh_from_db()
    assert day.expected_quantity is None


def test_no_token(cast: Any, day: ServiceDay) -> None:
    res = post_json(cast.api(), f"/api/service-days/{day.pk}/confirm-expected", {})
    assert res.status_code == 401
    assert res.json() == {"message": "Unauthorized", "statusCode": 401}


# --- Served -----------------------------------------------------------------------------------


ON_THE_DAY = datetime(2026, 1, 25, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize("quantity", [45, 75, 0, 500])
def test_catering_confirms_served(
    cast: Any, contract: Contract, day: ServiceDay, quantity: int
) -> None:
    with time_machine.travel(ON_THE_DAY, tick=False):
        res = served(cast, day.pk, {"servedQuantity": quantity})
    assert res.status_code == 201
    body = res.json()
    assert body["status"] == "CONFIRMED"
    assert body["servedQuantity"] == quantity
    assert body["servedConfirmedAt"] == "2026-01-25T14:05:00.000Z"
    assert body["expectedQuantity"] is None  # not required
    event = OutboxEvent.objects.get(event_type="servicedays.served_confirmed")
    assert event.aggregate_type == "ServiceDay"
    assert event.payload["servedQuantity"] == quantity
    assert event.payload["contractId"] == str(contract.pk)


def test_served_only_on_or_after_the_day(cast: Any, day: ServiceDay) -> None:
    with time_machine.travel(datetime(2026, 1, 24, 23, 59, 59, tzinfo=UTC), tick=False):
        res = served(cast, day.pk, {"servedQuantity": 45})
    assert res.status_code == 400
    assert res.json()["message"] == (
        "Served quantity can only be confirmed on or after the service date"
    )
    with time_machine.travel(datetime(2026, 1, 25, tzinfo=UTC), tick=False):
        assert served(cast, day.pk, {"servedQuantity": 45}).status_code == 201
    with time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False):
        res = served(cast, day.pk, {"servedQuantity": 50}, cast.catering.admin)
    assert res.json()["message"] == "ServiceDay is already confirmed"
    day.refresh_from_db()
    assert day.served_quantity == 45


def test_served_check_order(cast: Any) -> None:
    res = served(cast, "x", {"servedQuantity": 1}, cast.client.admin)
    assert res.status_code == 403
    assert res.json()["message"] == "This action is restricted to CATERING companies"
    res = served(cast, "x", {"servedQuantity": 1})
    assert res.json()["message"] == "Validation failed (uuid is expected)"
    paused = make_contract(cast, status=ContractStatus.PAUSED)
    day = make_day(paused, DAY)
    res = served(cast, day.pk, {"servedQuantity": 1}, cast.other_catering.admin)
    assert res.json()["message"] == "Only the catering company can confirm served quantity"
    with time_machine.travel(ON_THE_DAY, tick=False):
        res = served(cast, day.pk, {"servedQuantity": "1"})
    assert res.json()["message"] == [
        "servedQuantity must not be less than 0",
        "servedQuantity must be an integer number",
    ]
    with time_machine.travel(ON_THE_DAY, tick=False):
        res = served(cast, day.pk, {"servedQuantity": 1})
    assert res.json()["message"] == "Contract is PAUSED, only ACTIVE contracts allow this operation"


@pytest.mark.parametrize("tenant", ["other_catering", "other_client", "client"])
def test_it_validates_ownership_for_served(cast: Any, day: ServiceDay, tenant: str) -> None:
    with time_machine.travel(ON_THE_DAY, tick=False):
        res = served(cast, day.pk, {"servedQuantity": 10}, getattr(cast, tenant).manager)
    assert res.status_code == 403
    day.refresh_from_db()
    assert day.status == ServiceDayStatus.PENDING


# --- Concurrency ------------------------------------------------------------------------------


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Activity is snapshotted per transaction; the caller polls inside one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["expected", "served"])
def test_two_concurrent_confirmations_one_wins(cast: Any, kind: str) -> None:
    contract = make_contract(cast)
    day = make_day(contract, DAY)
    confirm, key, users = {
        "expected": (expected, "expectedQuantity", [cast.client.employee, cast.client.admin]),
        "served": (served, "servedQuantity", [cast.catering.employee, cast.catering.admin]),
    }[kind]
    now = EARLY if kind == "expected" else ON_THE_DAY
    results: list[int] = []

    def attempt(user: Any, quantity: int) -> None:
        try:
            results.append(confirm(cast, day.pk, {key: quantity}, user).status_code)
        finally:
            connections.close_all()

    # The clock is process-wide, so one travel covers both threads. Holding the row makes both
    # requests arrive while it is locked; without the row lock in the service both would read
    # an unconfirmed day and both would succeed.
    with time_machine.travel(now, tick=False):
        with transaction.atomic():
            ServiceDay.objects.select_for_update().get(pk=day.pk)
            threads = [
                threading.Thread(target=attempt, args=(user, q))
                for user, q in zip(users, (50, 60), strict=True)
            ]
            for thread in threads:
                thread.start()
            give_up = time.monotonic() + 10
            while _waiting_on_locks() < 2 and time.monotonic() < give_up:
                time.sleep(0.02)  # polling a condition, bounded; no behaviour depends on it
            assert _waiting_on_locks() == 2
        for thread in threads:
            thread.join(timeout=20)
    assert sorted(results) == [201, 400]
    day.refresh_from_db()
    assert getattr(day, "expected_quantity" if kind == "expected" else "served_quantity") in (
        50,
        60,
    )
    assert OutboxEvent.objects.filter(event_type__startswith="servicedays.").count() == 1
