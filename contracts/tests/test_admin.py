"""The contract admin: lists, filters, search, weekday inline, actions through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from chefops.testing.cast import Cast
from chefops.testing.factories import ContractFactory
from companies.models import User
from contracts.models import Contract, ContractStatus
from contracts.tests.helpers import post
from outbox.models import OutboxEvent

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


def test_change_edits_terms_and_weekdays_but_not_status_or_parties(
    admin_client: Client, cast: Cast
) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company, weekdays=[1, 3]
    )
    url = reverse("admin:contracts_contract_change", args=[contract.id])
    days = list(contract.weekdays.order_by("id"))
    data = {
        "start_date": contract.start_date.isoformat(),
        "end_date": "",
        "price_per_service": "20.00",
        "flexible_quantity": "on",
        "min_daily_quantity": "5",
        "max_daily_quantity": "10",
        "notice_period_hours": "12",
        "status": "TERMINATED",  # read-only: ignored
        "client_company": str(cast.other_client.company.id),  # read-only: ignored
        "weekdays-TOTAL_FORMS": "3",
        "weekdays-INITIAL_FORMS": "2",
        "weekdays-MIN_NUM_FORMS": "1",
        "weekdays-MAX_NUM_FORMS": "7",
        "weekdays-0-id": str(days[0].id),
        "weekdays-0-contract": str(contract.id),
        "weekdays-0-day_of_week": "1",
        "weekdays-0-DELETE": "on",
        "weekdays-1-id": str(days[1].id),
        "weekdays-1-contract": str(contract.id),
        "weekdays-1-day_of_week": "3",
        "weekdays-2-contract": str(contract.id),
        "weekdays-2-day_of_week": "6",
    }
    res = admin_client.post(url, data)
    assert res.status_code == 302, res.context and res.context["adminform"].form.errors
    contract.refresh_from_db()
    assert (contract.price_per_service, contract.max_daily_quantity) == (20, 10)
    assert contract.status == ContractStatus.ACTIVE
    assert contract.client_company_id == cast.client.company.id
    assert list(contract.weekdays.values_list("day_of_week", flat=True)) == [3, 6]


def test_contracts_cannot_be_deleted_in_the_admin(admin_client: Client, cast: Cast) -> None:
    contract = ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    url = reverse("admin:contracts_contract_delete", args=[contract.id])
    assert admin_client.get(url).status_code == 403


def test_a_conflict_found_only_by_the_service_is_a_message_not_a_500(
    admin_client: Client, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race window: the form's pair check passed, then another ACTIVE contract appeared."""
    from contracts.admin import ContractAdminForm

    monkeypatch.setattr(ContractAdminForm, "_clean_parties", lambda self, cleaned: None)
    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )
    res = admin_client.post(ADD, add_form(cast, [1]), follow=True)
    assert res.status_code == 200
    assert messages_of(res) == [
        'An active contract already exists between "Delicias del Sur" and "TechCorp Argentina"'
    ]
    assert res.redirect_chain == [(ADD, 302)]
    assert Contract.objects.count() == 1
    assert not OutboxEvent.objects.exists()
