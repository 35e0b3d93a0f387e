"""The contract admin: lists, filters, search, weekday inline, actions through the services."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from chefops.testing.cast import Cast
from chefops.testing.factories import ContractFactory
from companies.models import User
from contracts.models import Contract, ContractStatus
from contracts.tests.helpers import get, post
from outbox.models import OutboxEvent
from servicedays.models import ServiceDay

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:contracts_contract_changelist")
ADD = reverse("admin:contracts_contract_add")


@pytest.fixture
def staff() -> User:
    return User.objects.create_superuser("ops@chefops.local", "pw-for-tests-only")


@pytest.fixture
def admin_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def run_action(client: Client, action: str, contracts: list[Contract]) -> Any:
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(c.id) for c in contracts]},
        follow=True,
    )
    assert response.status_code == 200
    return response


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_changelist_filters_and_search(admin_client: Client, cast: Cast) -> None:
    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    ContractFactory.create(
        catering_company=cast.other_catering.company,
        client_company=cast.other_client.company,
        status=ContractStatus.PAUSED,
    )
    res = admin_client.get(CHANGELIST)
    assert res.status_code == 200
    assert res.context["cl"].result_count == 2
    assert admin_client.get(CHANGELIST, {"q": "Startup"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"q": "Delicias"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"status__exact": "PAUSED"}).context["cl"].result_count == 1
    by_caterer = {"catering_company__id__exact": str(cast.catering.company.id)}
    assert admin_client.get(CHANGELIST, by_caterer).context["cl"].result_count == 1
    by_client = {"client_company__id__exact": str(cast.other_client.company.id)}
    assert admin_client.get(CHANGELIST, by_client).context["cl"].result_count == 1


@pytest.mark.parametrize(
    ("action", "start", "event_type"),
    [
        ("pause_contracts", ContractStatus.ACTIVE, "contract.paused"),
        ("resume_contracts", ContractStatus.PAUSED, "contract.resumed"),
        ("terminate_contracts", ContractStatus.PAUSED, "contract.terminated"),
    ],
)
def test_actions_emit_the_same_events_as_the_api(
    admin_client: Client, staff: User, cast: Cast, action: str, start: str, event_type: str
) -> None:
    via_api, via_admin = (
        ContractFactory.create(
            catering_company=cast.catering.company if i == 0 else cast.other_catering.company,
            client_company=cast.client.company,
            status=start,
        )
        for i in range(2)
    )
    verb = action.removesuffix("_contracts")
    assert (
        post(cast.api(cast.client.manager), f"/api/contracts/{via_api.id}/{verb}").status_code
        == 201
    )
    res = run_action(admin_client, action, [via_admin])
    assert messages_of(res) == [f"1 contract(s) {verb.rstrip('e')}ed."]

    api_event, admin_event = OutboxEvent.objects.order_by("created_at")
    assert api_event.event_type == admin_event.event_type == event_type
    assert admin_event.aggregate_id == str(via_admin.id)
    assert admin_event.payload.keys() == api_event.payload.keys()
    same = {k: v for k, v in api_event.payload.items() if not k.endswith(("Id", "At"))}
    assert {k: admin_event.payload[k] for k in same} == same
    assert admin_event.metadata["actorUserId"] == str(staff.id)
    assert admin_event.metadata["actorCompanyId"] is None
    via_admin.refresh_from_db()
    assert via_admin.status == Contract.objects.get(pk=via_api.pk).status


def test_refused_actions_are_reported_not_500(admin_client: Client, cast: Cast) -> None:
    terminated = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        status=ContractStatus.TERMINATED,
    )
    paused = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        status=ContractStatus.PAUSED,
    )
    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    res = run_action(admin_client, "terminate_contracts", [terminated])
    assert messages_of(res) == [
        f"Not terminated: {str(terminated.id)[:8]}: Cannot terminate a terminated contract"
    ]
    res = run_action(admin_client, "resume_contracts", [paused])
    assert messages_of(res) == [
        f"Not resumed: {str(paused.id)[:8]}: An active contract already exists between "
        '"Delicias del Sur" and "TechCorp Argentina"'
    ]
    assert not OutboxEvent.objects.exists()


def add_form(cast: Cast, days: list[int], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "catering_company": str(cast.catering.company.id),
        "client_company": str(cast.client.company.id),
        "start_date": "2026-12-01",
        "end_date": "",
        "price_per_service": "14.75",
        "flexible_quantity": "on",
        "min_daily_quantity": "30",
        "max_daily_quantity": "30",
        "notice_period_hours": "24",
        "weekdays-TOTAL_FORMS": str(len(days)),
        "weekdays-INITIAL_FORMS": "0",
        "weekdays-MIN_NUM_FORMS": "1",
        "weekdays-MAX_NUM_FORMS": "7",
    }
    for i, day in enumerate(days):
        data[f"weekdays-{i}-day_of_week"] = str(day)
    data.update(overrides)
    return data


def test_add_goes_through_the_service(admin_client: Client, staff: User, cast: Cast) -> None:
    assert admin_client.get(ADD).status_code == 200
    res = admin_client.post(ADD, add_form(cast, [5, 1]))
    assert res.status_code == 302, res.context and res.context["adminform"].form.errors
    contract = Contract.objects.get()
    assert contract.status == ContractStatus.ACTIVE
    assert list(contract.weekdays.values_list("day_of_week", flat=True)) == [5, 1]
    event = OutboxEvent.objects.get()
    assert event.event_type == "contract.created"
    assert event.payload["serviceDays"] == [5, 1]
    assert event.metadata["actorUserId"] == str(staff.id)
    assert (
        admin_client.get(reverse("admin:contracts_contract_change", args=[contract.id])).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("overrides", "days", "error"),
    [
        ({}, [1], 'An active contract already exists between "Delicias del Sur"'),
        ({"min_daily_quantity": "31"}, [1], "minDailyQuantity cannot be greater than"),
        ({"end_date": "2026-11-30"}, [1], "endDate must not be before startDate"),
        ({}, [2, 2], "Please correct the duplicate data"),
        ({}, [], "Please submit at least 1 form"),
        ({"client_company": "x"}, [1], "is not a valid UUID"),
    ],
)
def test_add_refuses_invalid_contracts_with_a_message(
    admin_client: Client, cast: Cast, overrides: dict[str, Any], days: list[int], error: str
) -> None:
    ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company
        if overrides == {} and days == [1]
        else cast.other_client.company,
    )
    res = admin_client.post(ADD, add_form(cast, days, **overrides))
    assert res.status_code == 200
    assert error in res.content.decode().replace("&quot;", '"')
    assert Contract.objects.count() == 1
    assert not OutboxEvent.objects.exists()


def test_add_refuses_a_client_as_the_caterer(admin_client: Client, cast: Cast) -> None:
    form = add_form(cast, [1], catering_company=str(cast.other_client.company.id))
    res = admin_client.post(ADD, form)
    assert res.status_code == 200
    assert "Select a valid choice" in res.content.decode()
    assert not Contract.objects.exists()


NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def change_url(contract: Contract) -> str:
    return reverse("admin:contracts_contract_change", args=[contract.id])


def change_form(
    contract: Contract, days: list[int] | None = None, **overrides: Any
) -> dict[str, Any]:
    """The change page's POST: the contract's terms as they are, then ``overrides``; the
    weekday inline keeps the rows in ``days``, deletes the others and adds the missing ones."""
    rows = list(contract.weekdays.order_by("id"))
    wanted = [row.day_of_week for row in rows] if days is None else days
    added = [day for day in wanted if day not in {row.day_of_week for row in rows}]
    data: dict[str, Any] = {
        "start_date": contract.start_date.isoformat(),
        "end_date": contract.end_date.isoformat() if contract.end_date else "",
        "price_per_service": str(contract.price_per_service),
        "min_daily_quantity": str(contract.min_daily_quantity),
        "max_daily_quantity": str(contract.max_daily_quantity),
        "notice_period_hours": str(contract.notice_period_hours),
        "weekdays-TOTAL_FORMS": str(len(rows) + len(added)),
        "weekdays-INITIAL_FORMS": str(len(rows)),
        "weekdays-MIN_NUM_FORMS": "1",
        "weekdays-MAX_NUM_FORMS": "7",
    }
    if contract.flexible_quantity:
        data["flexible_quantity"] = "on"
    for i, row in enumerate(rows):
        data[f"weekdays-{i}-id"] = str(row.id)
        data[f"weekdays-{i}-contract"] = str(contract.id)
        data[f"weekdays-{i}-day_of_week"] = str(row.day_of_week)
        if row.day_of_week not in wanted:
            data[f"weekdays-{i}-DELETE"] = "on"
    for i, day in enumerate(added, start=len(rows)):
        data[f"weekdays-{i}-contract"] = str(contract.id)
        data[f"weekdays-{i}-day_of_week"] = str(day)
    data.update(overrides)
    return data


def page_text(response: Any) -> str:
    return response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")


def test_change_goes_through_the_service_and_emits_contract_updated(
    admin_client: Client, staff: User, cast: Cast, clock: time_machine.Traveller
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company, weekdays=[1, 3]
    )
    created_at = contract.updated_at
    clock.shift(timedelta(hours=1))
    data = change_form(
        contract,
        [3, 6],
        price_per_service="20.00",
        min_daily_quantity="5",
        max_daily_quantity="10",
        notice_period_hours="12",
        status="TERMINATED",  # read-only: ignored
        client_company=str(cast.other_client.company.id),  # read-only: ignored
    )
    res = admin_client.post(change_url(contract), data)
    assert res.status_code == 302, res.context and res.context["adminform"].form.errors
    contract.refresh_from_db()
    assert (contract.price_per_service, contract.max_daily_quantity) == (20, 10)
    assert contract.status == ContractStatus.ACTIVE
    assert contract.client_company_id == cast.client.company.id
    assert list(contract.weekdays.values_list("day_of_week", flat=True)) == [3, 6]
    assert contract.updated_at == NOW + timedelta(hours=1) != created_at

    event = OutboxEvent.objects.get()
    assert (event.event_type, event.aggregate_type) == ("contract.updated", "Contract")
    assert event.aggregate_id == str(contract.id)
    assert event.metadata["actorUserId"] == str(staff.id)
    assert event.metadata["actorCompanyId"] is None
    payload = event.payload
    assert payload["changedFields"] == [
        "pricePerService",
        "minDailyQuantity",
        "maxDailyQuantity",
        "noticePeriodHours",
        "serviceDays",
    ]
    assert payload["previous"] == {
        "pricePerService": 15.5,
        "minDailyQuantity": 20,
        "maxDailyQuantity": 80,
        "noticePeriodHours": 24,
        "serviceDays": [1, 3],
    }
    assert (payload["pricePerService"], payload["serviceDays"]) == (20.0, [3, 6])
    assert payload["updatedAt"] == "2026-03-04T10:00:00.000Z"
    assert payload["status"] == "ACTIVE"


def test_saving_an_unchanged_contract_writes_nothing(
    admin_client: Client, cast: Cast, clock: time_machine.Traveller
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    before = contract.updated_at
    clock.shift(timedelta(hours=1))
    res = admin_client.post(change_url(contract), change_form(contract))
    assert res.status_code == 302, res.context and res.context["adminform"].form.errors
    contract.refresh_from_db()
    assert contract.updated_at == before
    assert not OutboxEvent.objects.exists()


def test_new_weekdays_drop_the_untouched_days_ahead_they_no_longer_serve(
    admin_client: Client, cast: Cast, clock: time_machine.Traveller
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        start_date=date(2026, 1, 1),
        weekdays=[1, 3],
    )
    past_monday = ServiceDay.objects.create(
        contract=contract, service_date=date(2026, 3, 2), expected_quantity=30
    )
    today = ServiceDay.objects.create(contract=contract, service_date=date(2026, 3, 4))
    ServiceDay.objects.create(contract=contract, service_date=date(2026, 3, 9))  # a Monday
    res = admin_client.post(change_url(contract), change_form(contract, [3]))
    assert res.status_code == 302, res.context and res.context["adminform"].form.errors
    assert set(ServiceDay.objects.values_list("pk", flat=True)) == {past_monday.pk, today.pk}
    event = OutboxEvent.objects.get()
    assert event.payload["removedServiceDays"] == 1
    assert event.payload["changedFields"] == ["serviceDays"]


@pytest.mark.parametrize(
    ("overrides", "days"),
    [
        ({"price_per_service": "21.00"}, [3]),  # drops the Monday of a confirmed day
        ({"end_date": "2026-03-08"}, [1, 3]),  # ends before it
        ({"start_date": "2026-03-10"}, [1, 3]),  # starts after it
    ],
)
def test_a_change_the_service_refuses_is_a_form_error_and_writes_nothing(
    admin_client: Client,
    cast: Cast,
    clock: time_machine.Traveller,
    overrides: dict[str, str],
    days: list[int],
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        start_date=date(2026, 1, 1),
        weekdays=[1, 3],
    )
    confirmed = ServiceDay.objects.create(
        contract=contract, service_date=date(2026, 3, 9), expected_quantity=25
    )
    untouched = ServiceDay.objects.create(contract=contract, service_date=date(2026, 3, 16))
    before = Contract.objects.get(pk=contract.pk)
    res = admin_client.post(change_url(contract), change_form(contract, days, **overrides))
    assert res.status_code == 200
    assert res.context["adminform"].form.non_field_errors() == [
        "Service days with a confirmed quantity fall outside the new terms: 2026-03-09"
    ]
    assert "Service days with a confirmed quantity fall outside" in page_text(res)
    contract.refresh_from_db()
    assert contract.updated_at == before.updated_at
    assert contract.price_per_service == Decimal("15.50")
    assert (contract.start_date, contract.end_date) == (date(2026, 1, 1), None)
    assert list(contract.weekdays.values_list("day_of_week", flat=True)) == [1, 3]
    assert set(ServiceDay.objects.values_list("pk", flat=True)) == {confirmed.pk, untouched.pk}
    assert not OutboxEvent.objects.exists()


def test_a_terminated_contract_is_read_only(admin_client: Client, cast: Cast) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        status=ContractStatus.TERMINATED,
    )
    page = admin_client.get(change_url(contract))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    res = admin_client.post(change_url(contract), change_form(contract, price_per_service="1.00"))
    assert res.status_code == 403
    contract.refresh_from_db()
    assert contract.price_per_service == Decimal("15.50")
    assert not OutboxEvent.objects.exists()


@pytest.fixture
def read_cache(settings: Any) -> Iterator[None]:
    settings.READ_CACHE_SECONDS = 300
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db(transaction=True)
def test_the_read_cache_shows_a_change_made_in_the_admin(
    admin_client: Client, cast: Cast, clock: time_machine.Traveller, read_cache: None
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company,
        client_company=cast.client.company,
        start_date=date(2026, 1, 1),
        weekdays=[1, 3],
    )
    ServiceDay.objects.create(contract=contract, service_date=date(2026, 3, 4))
    ServiceDay.objects.create(contract=contract, service_date=date(2026, 3, 9))
    api = cast.api(cast.client.employee)
    days_url = f"/api/contracts/{contract.id}/service-days?from=2026-03-01&to=2026-03-31"

    def read() -> tuple[Any, list[str]]:
        listed = get(api, "/api/contracts").json()
        return listed[0]["pricePerService"], [
            d["serviceDate"][:10] for d in get(api, days_url).json()
        ]

    assert read() == (15.5, ["2026-03-04", "2026-03-09"])
    assert read() == (15.5, ["2026-03-04", "2026-03-09"])  # now from the cache
    data = change_form(contract, [3, 5], price_per_service="17.25")
    res = admin_client.post(change_url(contract), data)
    assert res.status_code == 302, res.context and res.context["adminform"].form.errors
    # the Monday ahead is gone; the new Friday came from the generation after the commit
    assert read() == (17.25, ["2026-03-04", "2026-03-06", "2026-03-11"])


def test_contracts_cannot_be_deleted_in_the_admin(admin_client: Client, cast: Cast) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    url = reverse("admin:contracts_contract_delete", args=[contract.id])
    assert admin_client.get(url).status_code == 403


def test_a_conflict_found_only_by_the_service_is_a_form_error_not_a_500(
    admin_client: Client, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race window: the form's pair check passed, then another ACTIVE contract appeared."""
    from contracts.admin import ContractAdminForm

    monkeypatch.setattr(ContractAdminForm, "_clean_parties", lambda self, cleaned: None)
    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    res = admin_client.post(ADD, add_form(cast, [1]))
    assert res.status_code == 200
    assert res.context["adminform"].form.non_field_errors() == [
        'An active contract already exists between "Delicias del Sur" and "TechCorp Argentina"'
    ]
    assert res.context["adminform"].form.data["price_per_service"] == "14.75"  # input kept
    assert Contract.objects.count() == 1
    assert not OutboxEvent.objects.exists()
