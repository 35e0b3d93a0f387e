"""The service-day admin: staff confirm quantities through the services, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client

from chefops.testing.factories import UserFactory
from companies.models import User
from contracts.models import Contract, ContractStatus
from outbox.models import OutboxEvent
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day, post_json

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday; the contract serves Mon/Wed/Fri
TODAY, FRIDAY, MONDAY = date(2026, 3, 4), date(2026, 3, 6), date(2026, 3, 9)


@pytest.fixture(autouse=True)
def clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def staff() -> User:
    return UserFactory.create(company=None, is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def url(day: ServiceDay, page: str = "change") -> str:
    return f"/admin/servicedays/serviceday/{day.pk}/{page}/"


def form_errors(response: Any) -> list[str]:
    form = response.context["adminform"].form
    return [str(e) for errors in form.errors.values() for e in errors]


def test_staff_confirm_for_a_party_with_the_apis_event(
    cast: Any, staff: User, staff_client: Client, contract: Contract
) -> None:
    mine, theirs = make_day(contract, FRIDAY), make_day(contract, MONDAY)
    res = post_json(
        cast.api(cast.client.employee),
        f"/api/service-days/{theirs.pk}/confirm-expected",
        {"expectedQuantity": 40},
    )
    assert res.status_code == 201
    page = staff_client.get(url(mine))
    assert "expected_quantity" in page.context["adminform"].form.fields

    res = staff_client.post(url(mine), {"expected_quantity": "42"})
    assert res.status_code == 302, form_errors(res)
    mine.refresh_from_db()
    assert (mine.expected_quantity, mine.expected_confirmed_at) == (42, NOW)
    assert (mine.status, mine.updated_at) == (ServiceDayStatus.PENDING, NOW)
    api_event, admin_event = OutboxEvent.objects.order_by("created_at", "id")
    assert admin_event.event_type == api_event.event_type == "servicedays.expected_confirmed"
    assert admin_event.aggregate_id == str(mine.pk)
    assert admin_event.payload.keys() == api_event.payload.keys()
    assert admin_event.payload["expectedQuantity"] == 42
    assert admin_event.metadata["actorUserId"] == str(staff.pk)
    assert admin_event.metadata["actorCompanyId"] is None

    # the expected quantity is now closed; the served one opens on the day
    page = staff_client.get(url(mine))
    assert "expected_quantity" in page.context["adminform"].readonly_fields


def test_staff_confirm_what_was_served_and_the_day_is_final(
    staff_client: Client, contract: Contract
) -> None:
    day = make_day(contract, TODAY)
    res = staff_client.post(url(day), {"served_quantity": "37"})
    assert res.status_code == 302, form_errors(res)
    day.refresh_from_db()
    assert (day.status, day.served_quantity, day.served_confirmed_at) == (
        ServiceDayStatus.CONFIRMED,
        37,
        NOW,
    )
    event = OutboxEvent.objects.get()
    assert event.event_type == "servicedays.served_confirmed"
    assert event.payload["servedQuantity"] == 37
    readonly = staff_client.get(url(day)).context["adminform"].readonly_fields
    assert {"expected_quantity", "served_quantity"} <= set(readonly)


@pytest.mark.parametrize(
    ("service_date", "post", "error"),
    [
        (
            TODAY,
            {"expected_quantity": "42"},
            "Notice period of 24 hours has passed. Deadline was 2026-03-03T00:00:00.000Z",
        ),
        (FRIDAY, {"expected_quantity": "500"}, "Expected quantity must be between 10 and 100"),
        (
            FRIDAY,
            {"served_quantity": "30"},
            "Served quantity can only be confirmed on or after the service date",
        ),
        # both at once: the served refusal undoes the expected confirmation too
        (
            FRIDAY,
            {"expected_quantity": "42", "served_quantity": "30"},
            "Served quantity can only be confirmed on or after the service date",
        ),
        (FRIDAY, {"expected_quantity": "-1"}, "Ensure this value is greater than or equal to 0."),
        (
            FRIDAY,
            {"expected_quantity": "99999999999"},
            "Ensure this value is less than or equal to 2147483647.",
        ),
    ],
)
def test_a_refused_confirmation_is_a_form_error_and_writes_nothing(
    staff_client: Client,
    contract: Contract,
    service_date: date,
    post: dict[str, str],
    error: str,
) -> None:
    day = make_day(contract, service_date)
    res = staff_client.post(url(day), post)
    assert res.status_code == 200
    assert form_errors(res) == [error]
    fresh = ServiceDay.objects.get(pk=day.pk)
    assert (fresh.expected_quantity, fresh.served_quantity, fresh.updated_at) == (
        None,
        None,
        day.updated_at,
    )
    assert not OutboxEvent.objects.exists()


def test_a_paused_contract_takes_no_confirmation(cast: Any, staff_client: Client) -> None:
    day = make_day(make_contract(cast, status=ContractStatus.PAUSED), FRIDAY)
    res = staff_client.post(url(day), {"expected_quantity": "42"})
    assert form_errors(res) == ["Contract is PAUSED, only ACTIVE contracts allow this operation"]
    assert ServiceDay.objects.get(pk=day.pk).expected_quantity is None


def test_days_are_neither_added_nor_deleted_here(staff_client: Client, contract: Contract) -> None:
    day = make_day(contract, TODAY)
    assert staff_client.get("/admin/servicedays/serviceday/add/").status_code == 403
    assert staff_client.get(url(day, "delete")).status_code == 403
    assert staff_client.post(url(day, "delete"), {"post": "yes"}).status_code == 403
    changelist = staff_client.get("/admin/servicedays/serviceday/")
    assert changelist.context["action_form"] is None  # no "delete selected" either
    assert ServiceDay.objects.filter(pk=day.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_read_cache_shows_a_confirmation_made_in_the_admin(
    cast: Any, settings: Any, staff_client: Client, contract: Contract
) -> None:
    settings.READ_CACHE_SECONDS = 300
    cache.clear()
    day = make_day(contract, TODAY)
    api = cast.api(cast.catering.employee)
    range_url = f"/api/contracts/{contract.pk}/service-days?from=2026-03-02&to=2026-03-06"

    def served() -> list[Any]:
        res = api.get(range_url)
        assert res.status_code == 200
        return [d["servedQuantity"] for d in res.json()]

    assert served() == served() == [None]  # the second from the cache
    res = staff_client.post(url(day), {"served_quantity": "37"})
    assert res.status_code == 302, form_errors(res)
    assert served() == [37]
    cache.clear()
