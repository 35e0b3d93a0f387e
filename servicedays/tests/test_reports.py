"""Weekly report JSON and CSV (reference R1/R2, §10.9; SPEC §2.10)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.models import Contract
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day, make_days

pytestmark = pytest.mark.django_db

CONFIRMED = ServiceDayStatus.CONFIRMED


@pytest.fixture
def premium(cast: Any) -> Contract:
    cast.catering.company.name = "Premium Catering Co."
    cast.catering.company.save()
    cast.client.company.name = "TechCorp Industries"
    cast.client.company.save()
    return make_contract(cast, price_per_service=Decimal("12.50"))


def week_days(contract: Contract) -> None:
    """Mon 19 .. Fri 23 Jan 2026: 3 confirmed, 2 pending."""
    rows = [
        (19, 50, 48, CONFIRMED),
        (20, 55, 55, CONFIRMED),
        (21, 45, 42, CONFIRMED),
        (22, 60, None, ServiceDayStatus.PENDING),
        (23, None, None, ServiceDayStatus.PENDING),
    ]
    make_days(contract, 2026, 1, rows)


def report(
    cast: Any, contract: Contract, query: str = "weekStart=2026-01-19", user: Any = None
) -> Any:
    api = cast.api(user or cast.client.employee)
    return api.get(f"/api/contracts/{contract.pk}/reports/weekly?{query}")


def csv_report(
    cast: Any, contract: Contract, query: str = "weekStart=2026-01-19", user: Any = None
) -> Any:
    api = cast.api(user or cast.client.employee)
    return api.get(f"/api/contracts/{contract.pk}/reports/weekly/csv?{query}")


def test_weekly_report_sums_and_costs(cast: Any, premium: Contract) -> None:
    week_days(premium)
    make_day(premium, date(2026, 1, 18), expected_quantity=99, served_quantity=99, status=CONFIRMED)
    make_day(premium, date(2026, 1, 26), expected_quantity=99, served_quantity=99, status=CONFIRMED)
    res = report(cast, premium)
    assert res.status_code == 200
    body = res.json()
    assert body["contractId"] == str(premium.pk)
    assert body["cateringCompany"] == {
        "id": str(cast.catering.company.pk),
        "name": "Premium Catering Co.",
    }
    assert body["clientCompany"] == {
        "id": str(cast.client.company.pk),
        "name": "TechCorp Industries",
    }
    assert body["pricePerService"] == 12.5
    assert body["weekStartDate"] == "2026-01-19T00:00:00.000Z"
    assert body["weekEndDate"] == "2026-01-25T00:00:00.000Z"
    assert body["summary"] == {
        "totalDays": 5,
        "confirmedDays": 3,
        "pendingDays": 2,
        "totalExpected": 210,
        "totalServed": 145,
        "totalCost": 1812.5,
    }
    assert [d["cost"] for d in body["serviceDays"]] == [600, 687.5, 525, 0, 0]
    first = body["serviceDays"][0]
    assert set(first) == {
        "id",
        "serviceDate",
        "expectedQuantity",
        "servedQuantity",
        "status",
        "cost",
    }
    assert first["serviceDate"] == "2026-01-19"
    # The keys the frontend reads (SPEC §2.10).
    assert body["weekStart"] == "2026-01-19" and body["weekEnd"] == "2026-01-25"
    assert body["entries"][0] == {
        "date": "2026-01-19",
        "dayOfWeek": "Mon",
        "expectedQuantity": 50,
        "servedQuantity": 48,
        "difference": -2,
        "status": "CONFIRMED",
    }
    assert [e["dayOfWeek"] for e in body["entries"]] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert [e["difference"] for e in body["entries"]] == [-2, 0, -3, None, None]
    assert body["totals"] == {"totalExpected": 210, "totalServed": 145, "totalDifference": -5}


def test_empty_week(cast: Any, premium: Contract) -> None:
    body = report(cast, premium).json()
    assert body["summary"] == {
        "totalDays": 0,
        "confirmedDays": 0,
        "pendingDays": 0,
        "totalExpected": 0,
        "totalServed": 0,
        "totalCost": 0,
    }
    assert body["serviceDays"] == [] and body["entries"] == []
    assert body["totals"] == {"totalExpected": 0, "totalServed": 0, "totalDifference": 0}


def test_week_across_a_month_boundary_and_any_start_day(cast: Any, premium: Contract) -> None:
    make_day(premium, date(2026, 1, 30), served_quantity=10, status=CONFIRMED)
    make_day(premium, date(2026, 2, 1), served_quantity=20, status=CONFIRMED)
    make_day(premium, date(2026, 2, 2), served_quantity=40, status=CONFIRMED)
    body = report(cast, premium, "weekStart=2026-01-26").json()
    assert body["summary"]["totalDays"] == 2 and body["summary"]["totalServed"] == 30
    assert body["weekEnd"] == "2026-02-01"
    thursday = report(cast, premium, "weekStart=2026-01-29").json()
    assert [e["date"] for e in thursday["entries"]] == ["2026-01-30", "2026-02-01", "2026-02-02"]
    assert [e["dayOfWeek"] for e in thursday["entries"]] == ["Fri", "Sun", "Mon"]


def test_week_start_with_a_time_is_echoed(cast: Any, premium: Contract) -> None:
    make_day(premium, date(2026, 11, 26))
    make_day(premium, date(2026, 12, 2))
    body = report(cast, premium, "weekStart=2026-11-26T15:00:00Z").json()
    assert body["weekStartDate"] == "2026-11-26T15:00:00.000Z"
    assert body["weekEndDate"] == "2026-12-02T15:00:00.000Z"
    assert body["summary"]["totalDays"] == 2


def test_catering_may_view_and_costs_use_the_price(cast: Any) -> None:
    contract = make_contract(cast, price_per_service=Decimal("12.50"))
    make_day(contract, date(2026, 1, 21), served_quantity=35, status=CONFIRMED)
    body = report(cast, contract, user=cast.catering.employee).json()
    assert body["serviceDays"][0]["cost"] == 437.5
    assert body["summary"]["totalCost"] == 437.5


@pytest.mark.parametrize(
    ("query", "messages"),
    [
        ("", ["weekStart must be a valid ISO 8601 date string"]),
        ("weekStart=19-01-2026", ["weekStart must be a valid ISO 8601 date string"]),
        ("weekStart=2026-01-19&extra=pdf", ["property extra should not exist"]),
    ],
)
def test_query_validation(cast: Any, premium: Contract, query: str, messages: list[str]) -> None:
    for fetch in (report, csv_report):
        res = fetch(cast, premium, query)
        assert res.status_code == 400
        assert res["Content-Type"] == "application/json; charset=utf-8"
        assert res.json() == {"message": messages, "error": "Bad Request", "statusCode": 400}


@pytest.mark.parametrize("tenant", ["other_catering", "other_client"])
def test_it_validates_ownership(cast: Any, premium: Contract, tenant: str) -> None:
    user = getattr(cast, tenant).admin
    for fetch in (report, csv_report):
        res = fetch(cast, premium, user=user)
        assert res.status_code == 403
        assert res.json() == {
            "message": "Only the catering or client company can view this report",
            "error": "Forbidden",
            "statusCode": 403,
        }


def test_unknown_contract_and_bad_id(cast: Any) -> None:
    api = cast.api(cast.client.admin)
    unknown = "11111111-2222-4333-8444-555555555555"
    for suffix in ("", "/csv"):
        res = api.get(f"/api/contracts/{unknown}/reports/weekly{suffix}?weekStart=2026-01-19")
        assert res.status_code == 404
        assert res.json()["message"] == f"Contract #{unknown} not found"
        res = api.get(f"/api/contracts/abc/reports/weekly{suffix}?weekStart=2026-01-19")
        assert res.json()["message"] == "Validation failed (uuid is expected)"
        assert cast.api().get(f"/api/contracts/{unknown}/reports/weekly{suffix}").status_code == 401


def test_csv_golden_text(cast: Any, premium: Contract) -> None:
    week_days(premium)
    res = csv_report(cast, premium)
    assert res.status_code == 200
    assert res["Content-Type"] == "text/csv; charset=utf-8"
    assert res["Content-Disposition"] == (
        f'attachment; filename="weekly-report-{premium.pk}-2026-01-19.csv"'
    )
    assert res.content.decode() == (
        "Weekly Report - Premium Catering Co. / TechCorp Industries\n"
        "Week: 2026-01-19 to 2026-01-25\n"
        "Price per Service: 12.5\n"
        "\n"
        "Date,Day,Expected Quantity,Served Quantity,Status,Cost\n"
        "2026-01-19,Mon,50,48,CONFIRMED,600.00\n"
        "2026-01-20,Tue,55,55,CONFIRMED,687.50\n"
        "2026-01-21,Wed,45,42,CONFIRMED,525.00\n"
        "2026-01-22,Thu,60,,PENDING,0.00\n"
        "2026-01-23,Fri,,,PENDING,0.00\n"
        "\n"
        "Total Days,5\n"
        "Confirmed Days,3\n"
        "Total Expected,210\n"
        "Total Served,145\n"
        "Total Cost,1812.50"
    )


def test_csv_quotes_a_company_name_with_a_comma(cast: Any) -> None:
    cast.catering.company.name = 'Sabores, "Gourmet" S.A.'
    cast.catering.company.save()
    contract = make_contract(cast, price_per_service=Decimal("7.33"))
    make_day(
        contract, date(2026, 1, 20), expected_quantity=33, served_quantity=33, status=CONFIRMED
    )
    text = csv_report(cast, contract, "weekStart=2026-01-19T00:00:00.000Z").content.decode()
    lines = text.split("\n")
    assert lines[0] == '"Weekly Report - Sabores, ""Gourmet"" S.A. / TechCorp Argentina"'
    assert lines[2] == "Price per Service: 7.33"
    assert lines[5] == "2026-01-20,Tue,33,33,CONFIRMED,241.89"
    assert lines[-1] == "Total Cost,241.89"
    assert not text.endswith("\n")


def test_csv_filename_keeps_week_start_as_sent(cast: Any, premium: Contract) -> None:
    res = csv_report(cast, premium, "weekStart=2026-01-19T00:00:00.000Z")
    assert res["Content-Disposition"] == (
        f'attachment; filename="weekly-report-{premium.pk}-2026-01-19T00:00:00.000Z.csv"'
    )


def test_csv_errors_stay_json_whatever_accept_says(cast: Any, premium: Contract) -> None:
    api = cast.api(cast.other_client.admin)
    res = api.get(
        f"/api/contracts/{premium.pk}/reports/weekly/csv?weekStart=2026-01-19",
        HTTP_ACCEPT="text/csv",
    )
    assert res.status_code == 403
    assert res["Content-Type"] == "application/json; charset=utf-8"


def test_query_count_does_not_grow_with_rows(cast: Any) -> None:
    small = make_contract(cast)
    large = make_contract(cast, client_company=cast.other_client.company)
    make_day(small, date(2026, 1, 19))
    ServiceDay.objects.bulk_create(
        ServiceDay(
            contract=large, service_date=date(2026, 1, 19 + i), status=CONFIRMED, served_quantity=i
        )
        for i in range(7)
    )
    counts = []
    for contract, user in ((small, cast.client.employee), (large, cast.other_client.employee)):
        for fetch in (report, csv_report):
            with CaptureQueriesContext(connection) as ctx:
                assert fetch(cast, contract, user=user).status_code == 200
            counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[2] and counts[1] == counts[3]


def test_report_uses_utc_dates_for_offsets(cast: Any, premium: Contract) -> None:
    make_day(premium, date(2026, 11, 24))
    body = report(cast, premium, "weekStart=2026-11-23T22:00:00-05:00").json()
    assert body["weekStart"] == "2026-11-24"
    assert body["weekStartDate"] == datetime(2026, 11, 24, 3, tzinfo=UTC).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    assert [e["date"] for e in body["entries"]] == ["2026-11-24"]
