"""GET /api/contracts/:id/service-days?from&to (reference S1, §10.4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.models import Contract
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day

pytestmark = pytest.mark.django_db


def list_days(cast: Any, contract: Contract, query: str, user: Any = None) -> Any:
    api = cast.api(user or cast.client.employee)
    return api.get(f"/api/contracts/{contract.pk}/service-days?{query}")


def test_range_is_inclusive_and_ordered(cast: Any, contract: Contract) -> None:
    for day in (21, 19, 23, 20, 22, 18, 24):
        make_day(contract, date(2026, 1, day))
    res = list_days(cast, contract, "from=2026-01-19&to=2026-01-21")
    assert res.status_code == 200
    assert [d["serviceDate"] for d in res.json()] == ["2026-01-19", "2026-01-20", "2026-01-21"]
    assert res["X-Total-Count"] == "3"
    assert list_days(cast, contract, "from=2026-01-21&to=2026-01-19").json() == []


def test_service_day_object_shape(cast: Any, contract: Contract) -> None:
    at = datetime(2026, 1, 17, 10, 30, 1, 123456, tzinfo=UTC)
    day = make_day(
        contract,
        date(2026, 1, 19),
        expected_quantity=20,
        expected_confirmed_at=at,
        created_at=at,
        updated_at=at,
    )
    [body] = list_days(cast, contract, "from=2026-01-19&to=2026-01-19").json()
    assert body == {
        "id": str(day.pk),
        "contractId": str(contract.pk),
        "serviceDate": "2026-01-19",
        "expectedQuantity": 20,
        "servedQuantity": None,
        "expectedConfirmedAt": "2026-01-17T10:30:01.123Z",
        "servedConfirmedAt": None,
        "status": "PENDING",
        "createdAt": "2026-01-17T10:30:01.123Z",
        "updatedAt": "2026-01-17T10:30:01.123Z",
    }


def test_status_counts_after_confirming_one_of_five(cast: Any, contract: Contract) -> None:
    for offset in range(5):
        make_day(contract, date(2026, 1, 19) + timedelta(days=offset))
    ServiceDay.objects.filter(service_date=date(2026, 1, 20)).update(
        status=ServiceDayStatus.CONFIRMED, served_quantity=30
    )
    body = list_days(cast, contract, "from=2026-01-19&to=2026-01-23").json()
    assert [d["status"] for d in body].count("PENDING") == 4


@pytest.mark.parametrize(
    ("query", "messages"),
    [
        (
            "",
            [
                "from must be a valid ISO 8601 date string",
                "to must be a valid ISO 8601 date string",
            ],
        ),
        ("from=23-11-2026&to=2026-11-30", ["from must be a valid ISO 8601 date string"]),
        ("from=2026-11-23", ["to must be a valid ISO 8601 date string"]),
        (
            "from=2026-11-23&to=2026-11-30&x=1",
            ["property x should not exist"],
        ),
    ],
)
def test_query_validation(cast: Any, contract: Contract, query: str, messages: list[str]) -> None:
    res = list_days(cast, contract, query)
    assert res.status_code == 400
    assert res.json() == {"message": messages, "error": "Bad Request", "statusCode": 400}


def test_instants_reduce_to_utc_dates(cast: Any, contract: Contract) -> None:
    make_day(contract, date(2026, 11, 24))
    res = list_days(cast, contract, "from=2026-11-23T22:00:00-05:00&to=2026-11-24T00:00:00Z")
    assert [d["serviceDate"] for d in res.json()] == ["2026-11-24"]


def test_paging(cast: Any, contract: Contract) -> None:
    for offset in range(5):
        make_day(contract, date(2026, 1, 1) + timedelta(days=offset))
    res = list_days(cast, contract, "from=2026-01-01&to=2026-01-31&page=2&limit=2")
    assert [d["serviceDate"] for d in res.json()] == ["2026-01-03", "2026-01-04"]
    assert res["X-Total-Count"] == "5"
    assert 'rel="next"' in res["Link"]
    full_first_page = list_days(cast, contract, "from=2026-01-01&to=2026-01-31&limit=2")
    assert [d["serviceDate"] for d in full_first_page.json()] == ["2026-01-01", "2026-01-02"]
    assert full_first_page["X-Total-Count"] == "5"
    whole = list_days(cast, contract, "from=2026-01-01&to=2026-01-31&page=1&limit=5")
    assert len(whole.json()) == 5 and whole["X-Total-Count"] == "5"
    assert 'rel="next"' not in whole["Link"]
    bad = list_days(cast, contract, "from=2026-01-01&to=2026-01-31&limit=0")
    assert bad.status_code == 400
    outsider = cast.other_client.employee
    res = list_days(cast, contract, "from=2026-01-01&to=2026-01-31&page=2&limit=2", outsider)
    assert res.status_code == 403


@pytest.mark.parametrize(
    ("tenant", "role"),
    [
        ("catering", "EMPLOYEE"),
        ("catering", "ADMIN"),
        ("client", "EMPLOYEE"),
        ("client", "MANAGER"),
    ],
)
def test_every_role_of_both_parties_may_read(
    cast: Any, contract: Contract, tenant: str, role: str
) -> None:
    make_day(contract, date(2026, 1, 19))
    res = list_days(
        cast, contract, "from=2026-01-19&to=2026-01-19", getattr(cast, tenant).user(role)
    )
    assert res.status_code == 200 and len(res.json()) == 1


@pytest.mark.parametrize("tenant", ["other_catering", "other_client"])
def test_it_validates_ownership(cast: Any, contract: Contract, tenant: str) -> None:
    make_day(contract, date(2026, 1, 19))
    res = list_days(cast, contract, "from=2026-01-19&to=2026-01-19", getattr(cast, tenant).admin)
    assert res.status_code == 403
    assert res.json()["message"] == "Not authorized to view this contract"


def test_unknown_contract_bad_id_and_no_token(cast: Any) -> None:
    api = cast.api(cast.client.admin)
    unknown = "7f1c9a8e-0000-4000-8000-000000000000"
    res = api.get(f"/api/contracts/{unknown}/service-days?from=2026-01-01&to=2026-01-02")
    assert res.status_code == 404
    assert res.json()["message"] == f"Contract #{unknown} not found"
    res = api.get("/api/contracts/123/service-days?from=2026-01-01&to=2026-01-02")
    assert res.json()["message"] == "Validation failed (uuid is expected)"
    res = cast.api().get(f"/api/contracts/{unknown}/service-days?from=2026-01-01&to=2026-01-02")
    assert res.status_code == 401


def test_query_count_does_not_grow_with_rows(cast: Any) -> None:
    small = make_contract(cast)
    large = make_contract(cast, client_company=cast.other_client.company)
    make_day(small, date(2026, 1, 1))
    ServiceDay.objects.bulk_create(
        ServiceDay(contract=large, service_date=date(2026, 1, 1) + timedelta(days=i))
        for i in range(90)
    )
    counts = []
    for contract, user in ((small, cast.client.employee), (large, cast.other_client.employee)):
        with CaptureQueriesContext(connection) as ctx:
            res = list_days(cast, contract, "from=2026-01-01&to=2026-12-31", user)
        assert res.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert (
        len(
            list_days(
                cast, large, "from=2026-01-01&to=2026-12-31", cast.other_client.employee
            ).json()
        )
        == 90
    )
    assert counts[0] == counts[1]


def test_first_page_rows_equal_the_serializer_output(cast: Any, contract: Contract) -> None:
    """The one-query first page (JSON text straight from SQL) matches service_day_data, for
    whole seconds (SQLite stores no fraction), sub-millisecond values (truncated) and nulls."""
    from chefops.api.renderers import camelize
    from servicedays.serializers import service_day_data

    whole = datetime(2026, 1, 17, 10, 30, 0, tzinfo=UTC)
    fine = datetime(2026, 1, 17, 23, 59, 59, 999999, tzinfo=UTC)
    make_day(contract, date(2026, 1, 19), created_at=whole, updated_at=fine)
    make_day(
        contract,
        date(2026, 1, 20),
        expected_quantity=0,
        expected_confirmed_at=fine,
        served_quantity=31,
        served_confirmed_at=whole,
        status=ServiceDayStatus.CONFIRMED,
        created_at=fine,
        updated_at=whole,
    )
    make_day(contract, date(2026, 1, 21))
    body = list_days(cast, contract, "from=2026-01-19&to=2026-01-21").json()
    days = ServiceDay.objects.filter(contract=contract).order_by("service_date")
    assert body == [camelize(service_day_data(day)) for day in days]
    assert body[0]["createdAt"] == "2026-01-17T10:30:00.000Z"
    assert body[0]["updatedAt"] == "2026-01-17T23:59:59.999Z"
    # the paged path (no fast path) gives the same objects
    assert (
        list_days(cast, contract, "from=2026-01-19&to=2026-01-21&page=1&limit=2").json()
        == (body[:2])
    )
    assert (
        list_days(cast, contract, "from=2026-01-19&to=2026-01-21&page=2&limit=2").json()
        == (body[2:])
    )
