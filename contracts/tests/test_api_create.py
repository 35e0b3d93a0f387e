"""POST /api/contracts: validation texts, check order (reference C4), the fixes, roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

from chefops.testing.cast import Cast
from chefops.testing.factories import CateringFactory, ClientFactory, ContractFactory
from companies.models import CompanyStatus, Role
from contracts.models import Contract, ContractStatus
from contracts.tests.helpers import DROP, ROLE_MESSAGE, create_body, error, post
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

URL = "/api/contracts"
NOW = datetime(2026, 11, 28, 17, 26, 46, 124000, tzinfo=UTC)

PRICE_MESSAGES = [
    "pricePerService must not be less than 0",
    "pricePerService must be a number conforming to the specified constraints",
]
SERVICE_DAYS_MESSAGES = [
    "each value in serviceDays must not be greater than 7",
    "each value in serviceDays must not be less than 1",
    "each value in serviceDays must be an integer number",
    "serviceDays must contain at least 1 elements",
    "serviceDays must be an array",
]


def int_messages(name: str) -> list[str]:
    return [f"{name} must not be less than 0", f"{name} must be an integer number"]


def test_created_contract_is_the_reference_object_plus_names(cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        res = post(
            cast.api(cast.client.manager),
            URL,
            create_body(cast, serviceDays=[6, 1, 7], pricePerService=12.345),
        )
    assert res.status_code == 201
    body = res.json()
    contract = Contract.objects.get()
    assert list(body) == [
        "id",
        "cateringCompanyId",
        "clientCompanyId",
        "startDate",
        "endDate",
        "pricePerService",
        "flexibleQuantity",
        "minDailyQuantity",
        "maxDailyQuantity",
        "noticePeriodHours",
        "status",
        "createdAt",
        "updatedAt",
        "serviceDays",
        "cateringName",
        "clientName",
    ]
    assert body == {
        "id": str(contract.id),
        "cateringCompanyId": str(cast.catering.company.id),
        "clientCompanyId": str(cast.client.company.id),
        "startDate": "2026-11-28",  # default: today's UTC date
        "endDate": None,
        "pricePerService": 12.35,  # rounded half-up to cents, a JSON number
        "flexibleQuantity": True,
        "minDailyQuantity": 20,
        "maxDailyQuantity": 80,
        "noticePeriodHours": 24,
        "status": "ACTIVE",
        "createdAt": "2026-11-28T17:26:46.124Z",
        "updatedAt": "2026-11-28T17:26:46.124Z",
        "serviceDays": [6, 1, 7],  # the order sent, not sorted
        "cateringName": "Delicias del Sur",
        "clientName": "TechCorp Argentina",
    }
    # Later reads keep the row order too.
    assert cast.api(cast.client.employee).get(f"{URL}/{contract.id}").json()["serviceDays"] == [
        6,
        1,
        7,
    ]


def test_dates_are_reduced_to_their_utc_date_and_defaults_apply(cast: Cast) -> None:
    res = post(
        cast.api(cast.catering.admin),
        URL,
        create_body(
            cast,
            startDate="2026-12-01T23:30:00-05:00",
            endDate="2027-06-30",
            flexibleQuantity=DROP,
        ),
    )
    assert res.status_code == 201
    assert res.json()["startDate"] == "2026-12-02"
    assert res.json()["endDate"] == "2027-06-30"
    assert res.json()["flexibleQuantity"] is True


def test_null_optional_fields_mean_absent(cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        res = post(
            cast.api(cast.client.admin),
            URL,
            create_body(cast, startDate=None, endDate=None, flexibleQuantity=None),
        )
    assert res.status_code == 201
    assert (res.json()["startDate"], res.json()["endDate"]) == ("2026-11-28", None)
    assert res.json()["flexibleQuantity"] is True


def test_empty_body_lists_every_message_in_declaration_order(cast: Cast) -> None:
    res = post(cast.api(cast.client.manager), URL, {})
    assert res.status_code == 400
    assert res.json() == error(
        400,
        [
            "cateringCompanyId must be a UUID",
            "clientCompanyId must be a UUID",
            *PRICE_MESSAGES,
            *int_messages("minDailyQuantity"),
            *int_messages("maxDailyQuantity"),
            *int_messages("noticePeriodHours"),
            *SERVICE_DAYS_MESSAGES,
        ],
    )
    assert not Contract.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        ({"cateringCompanyId": "not-a-uuid"}, ["cateringCompanyId must be a UUID"]),
        ({"clientCompanyId": 12}, ["clientCompanyId must be a UUID"]),
        ({"startDate": ""}, ["startDate must be a valid ISO 8601 date string"]),
        ({"startDate": "28/11/2026"}, ["startDate must be a valid ISO 8601 date string"]),
        ({"endDate": "2026-02-30"}, ["endDate must be a valid ISO 8601 date string"]),
        ({"pricePerService": "10"}, PRICE_MESSAGES),
        ({"pricePerService": None}, PRICE_MESSAGES),
        ({"pricePerService": -0.01}, ["pricePerService must not be less than 0"]),
        (
            {"pricePerService": 1e12},
            ["pricePerService must not be greater than 9999999999.99"],
        ),
        ({"flexibleQuantity": "true"}, ["flexibleQuantity must be a boolean value"]),
        ({"flexibleQuantity": 1}, ["flexibleQuantity must be a boolean value"]),
        ({"minDailyQuantity": "30"}, int_messages("minDailyQuantity")),
        ({"minDailyQuantity": -1}, ["minDailyQuantity must not be less than 0"]),
        ({"minDailyQuantity": 2.5}, ["minDailyQuantity must be an integer number"]),
        ({"maxDailyQuantity": True}, int_messages("maxDailyQuantity")),
        (
            {"maxDailyQuantity": 3_000_000_000},
            ["maxDailyQuantity must not be greater than 2147483647"],
        ),
        ({"noticePeriodHours": DROP}, int_messages("noticePeriodHours")),
        ({"serviceDays": [2, 2]}, ["serviceDays must not contain duplicate values"]),
        ({"serviceDays": []}, ["serviceDays must contain at least 1 elements"]),
        (
            {"serviceDays": [0, 8]},
            [
                "each value in serviceDays must not be greater than 7",
                "each value in serviceDays must not be less than 1",
            ],
        ),
        # class-validator's @Min/@Max(each) also fail on a non-number element.
        ({"serviceDays": [1, "2"]}, SERVICE_DAYS_MESSAGES[:3]),
        ({"serviceDays": "1"}, SERVICE_DAYS_MESSAGES),
        ({"reason": "x"}, ["property reason should not exist"]),
        (
            {"client_company_id": "x", "minDailyQuantity": -1},
            [
                "property client_company_id should not exist",
                "minDailyQuantity must not be less than 0",
            ],
        ),
    ],
)
def test_field_validation(cast: Cast, overrides: dict[str, Any], messages: list[str]) -> None:
    res = post(cast.api(cast.client.manager), URL, create_body(cast, **overrides))
    assert res.status_code == 400
    assert res.json() == error(400, messages)
    assert not OutboxEvent.objects.exists()


# --- checks after validation, in the reference order ------------------------------------------


def test_1_min_above_max_comes_before_the_company_checks(cast: Cast) -> None:
    missing = str(uuid.uuid4())
    res = post(
        cast.api(cast.client.manager),
        URL,
        create_body(cast, cateringCompanyId=missing, minDailyQuantity=81),
    )
    assert res.json() == error(400, "minDailyQuantity cannot be greater than maxDailyQuantity")


def test_2_unknown_catering_comes_before_the_client_checks(cast: Cast) -> None:
    missing = str(uuid.uuid4())
    res = post(
        cast.api(cast.client.manager),
        URL,
        create_body(cast, cateringCompanyId=missing, clientCompanyId=str(uuid.uuid4())),
    )
    assert res.json() == error(404, f"Catering company #{missing} not found")


def test_3_catering_of_the_wrong_type(cast: Cast) -> None:
    res = post(
        cast.api(cast.client.manager),
        URL,
        create_body(cast, cateringCompanyId=str(cast.other_client.company.id)),
    )
    assert res.json() == error(400, 'Company "Startup Hub" is not a catering company')


def test_4_inactive_catering(cast: Cast) -> None:
    inactive = CateringFactory.create(name="Cerrado", status=CompanyStatus.INACTIVE)
    res = post(
        cast.api(cast.client.manager), URL, create_body(cast, cateringCompanyId=str(inactive.id))
    )
    assert res.json() == error(400, 'Catering company "Cerrado" is not active')


def test_5_unknown_client(cast: Cast) -> None:
    missing = str(uuid.uuid4())
    res = post(cast.api(cast.catering.manager), URL, create_body(cast, clientCompanyId=missing))
    assert res.json() == error(404, f"Client company #{missing} not found")


def test_6_client_of_the_wrong_type(cast: Cast) -> None:
    res = post(
        cast.api(cast.catering.manager),
        URL,
        create_body(cast, clientCompanyId=str(cast.other_catering.company.id)),
    )
    assert res.json() == error(400, 'Company "Sabores Corporativos" is not a client company')


def test_same_company_on_both_sides_fails_the_client_type_check(cast: Cast) -> None:
    res = post(
        cast.api(cast.catering.manager),
        URL,
        create_body(cast, clientCompanyId=str(cast.catering.company.id)),
    )
    assert res.json() == error(400, 'Company "Delicias del Sur" is not a client company')


def test_7_inactive_client(cast: Cast) -> None:
    inactive = ClientFactory.create(name="Dormida SA", status=CompanyStatus.INACTIVE)
    res = post(
        cast.api(cast.catering.manager), URL, create_body(cast, clientCompanyId=str(inactive.id))
    )
    assert res.json() == error(400, 'Client company "Dormida SA" is not active')


def test_8_active_pair_conflict(cast: Cast, contract: Contract) -> None:
    res = post(cast.api(cast.client.manager), URL, create_body(cast))
    assert res.json() == error(
        409, 'An active contract already exists between "Delicias del Sur" and "TechCorp Argentina"'
    )
    assert Contract.objects.count() == 1
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("status", [ContractStatus.PAUSED, ContractStatus.TERMINATED])
def test_paused_and_terminated_contracts_do_not_block_the_pair(cast: Cast, status: str) -> None:
    ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company, status=status
    )
    res = post(cast.api(cast.client.manager), URL, create_body(cast))
    assert res.status_code == 201


# --- the fixes: end date, party check, roles ---------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2026-12-01", "2026-11-30", 400),
        ("2026-12-01", "2026-12-01", 201),
        (DROP, "2026-11-27", 400),  # before the default start (today)
        (DROP, "2026-11-28", 201),
    ],
)
def test_end_date_must_not_be_before_start_date(
    cast: Cast, start: object, end: str, status: int
) -> None:
    with time_machine.travel(NOW, tick=False):
        res = post(
            cast.api(cast.client.manager), URL, create_body(cast, startDate=start, endDate=end)
        )
    assert res.status_code == status
    if status == 400:
        assert res.json() == error(400, "endDate must not be before startDate")


def test_caller_must_be_a_party(cast: Cast) -> None:
    for user in (cast.other_client.manager, cast.other_catering.admin):
        res = post(cast.api(user), URL, create_body(cast))
        assert res.json() == error(403, "You can only create contracts for your own company")
    assert not Contract.objects.exists()


def test_party_check_order(cast: Cast, contract: Contract) -> None:
    outsider = cast.api(cast.other_client.manager)
    # min/max and company checks come first (reference order) ...
    res = post(outsider, URL, create_body(cast, minDailyQuantity=90))
    assert res.status_code == 400
    res = post(outsider, URL, create_body(cast, clientCompanyId=str(uuid.uuid4())))
    assert res.status_code == 404
    # ... then the party check, before the end-date rule and the pair conflict.
    res = post(outsider, URL, create_body(cast, startDate="2026-12-02", endDate="2026-12-01"))
    assert res.status_code == 403
    res = post(outsider, URL, create_body(cast))
    assert res.status_code == 403


def test_end_date_rule_comes_before_the_pair_conflict(cast: Cast, contract: Contract) -> None:
    res = post(
        cast.api(cast.client.manager),
        URL,
        create_body(cast, startDate="2026-12-02", endDate="2026-12-01"),
    )
    assert res.json() == error(400, "endDate must not be before startDate")


@pytest.mark.parametrize("tenant", ["catering", "client"])
@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER])
def test_managers_and_admins_of_either_party_can_create(cast: Cast, tenant: str, role: str) -> None:
    user = getattr(cast, tenant).user(role)
    res = post(cast.api(user), URL, create_body(cast))
    assert res.status_code == 201
    event = OutboxEvent.objects.get()
    assert event.metadata["actorUserId"] == str(user.id)
    assert event.metadata["actorCompanyId"] == str(getattr(cast, tenant).company.id)


@pytest.mark.parametrize("tenant", ["catering", "client"])
def test_employees_cannot_create_even_with_a_bad_body(cast: Cast, tenant: str) -> None:
    api = cast.api(getattr(cast, tenant).employee)
    assert post(api, URL, create_body(cast)).json() == error(403, ROLE_MESSAGE)
    assert post(api, URL, {"bogus": 1}).json() == error(403, ROLE_MESSAGE)
    assert not Contract.objects.exists()


def test_unauthenticated_is_401(cast: Cast) -> None:
    res = post(cast.api(), URL, create_body(cast))
    assert (res.status_code, res.json()) == (401, {"message": "Unauthorized", "statusCode": 401})


def test_malformed_json_is_400(cast: Cast) -> None:
    res = cast.api(cast.client.manager).post(URL, "not json", content_type="application/json")
    assert res.status_code == 400
    res = post(cast.api(cast.client.manager), URL, [1, 2])
    assert res.json() == error(400, ["Request body must be a JSON object"])


def test_create_writes_one_contract_created_event(cast: Cast) -> None:
    with time_machine.travel(NOW, tick=False):
        res = post(
            cast.api(cast.client.manager),
            URL,
            create_body(cast, serviceDays=[5, 1], endDate="2027-01-31", pricePerService=18),
        )
    event = OutboxEvent.objects.get()
    contract_id = res.json()["id"]
    assert (event.event_type, event.aggregate_type, event.aggregate_id) == (
        "contract.created",
        "Contract",
        contract_id,
    )
    assert event.payload == {
        "contractId": contract_id,
        "cateringCompanyId": str(cast.catering.company.id),
        "clientCompanyId": str(cast.client.company.id),
        "startDate": "2026-11-28T00:00:00.000Z",
        "endDate": "2027-01-31T00:00:00.000Z",
        "pricePerService": 18,
        "minDailyQuantity": 20,
        "maxDailyQuantity": 80,
        "serviceDays": [5, 1],
    }
    assert event.metadata["actorEmail"] == cast.client.manager.email
