"""GET /api/contracts/finance-metrics (reference C2, §4.6) on a hand-computed fixture."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.models import ContractStatus
from servicedays import selectors
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)  # day 10 of a 31-day month
CONFIRMED = ServiceDayStatus.CONFIRMED

ZEROS = {
    "budget": {"consumed": 0, "estimated": 0, "projectedEndOfMonth": 0, "previousMonth": 0},
    "kpis": {
        "costPerPerson": {"current": 0, "previousMonth": 0, "change": 0},
        "utilizationRate": {"current": 0, "previousMonth": 0, "change": 0},
        "contractsWithDeviation": 0,
        "upcomingServicesWeek": {"count": 0, "estimatedCost": 0},
    },
    "recentServices": [],
}


def metrics(cast: Any, user: Any = None) -> Any:
    with time_machine.travel(NOW, tick=False):
        return cast.api(user or cast.client.employee).get("/api/contracts/finance-metrics")


def build_fixture(cast: Any) -> dict[str, Any]:
    a = make_contract(cast, price_per_service=Decimal("12.50"))
    b = make_contract(
        cast,
        catering_company=cast.other_catering.company,
        price_per_service=Decimal("15.00"),
        status=ContractStatus.PAUSED,  # every status counts
    )
    c = make_contract(cast, client_company=cast.other_client.company)  # another client's
    ok = {"status": CONFIRMED}
    days = {
        "a02": make_day(a, date(2026, 3, 2), expected_quantity=20, served_quantity=21, **ok),
        "a03": make_day(a, date(2026, 3, 3), expected_quantity=10, served_quantity=9, **ok),
        "a09": make_day(a, date(2026, 3, 9), expected_quantity=15),
        "a12": make_day(a, date(2026, 3, 12), expected_quantity=11),
        "a20": make_day(a, date(2026, 3, 20)),
        "a_feb10": make_day(a, date(2026, 2, 10), expected_quantity=10, served_quantity=10, **ok),
        "a_feb11": make_day(a, date(2026, 2, 11), expected_quantity=12, served_quantity=9, **ok),
        "b04": make_day(b, date(2026, 3, 4), expected_quantity=30, served_quantity=40, **ok),
        "b05": make_day(b, date(2026, 3, 5), expected_quantity=0, served_quantity=5, **ok),
        "b10": make_day(b, date(2026, 3, 10), expected_quantity=25),
        "b_feb20": make_day(b, date(2026, 2, 20), expected_quantity=20, served_quantity=19, **ok),
        "c02": make_day(c, date(2026, 3, 2), expected_quantity=100, served_quantity=100, **ok),
    }
    return {"a": a, "b": b, "days": days}


def test_hand_computed_metrics(cast: Any) -> None:
    fx = build_fixture(cast)
    res = metrics(cast)
    assert res.status_code == 200
    body = res.json()
    assert body["budget"] == {
        "consumed": 1050,  # 262.5 + 112.5 + 600 + 75
        "estimated": 1525,  # 12.5 x (20+10+15+11) + 15 x (30+0+25)
        "projectedEndOfMonth": 3255,  # 1050 / 10 x 31
        "previousMonth": 523,  # 125 + 112.5 + 285 = 522.5 → 523 (half up)
    }
    assert body["kpis"] == {
        "costPerPerson": {
            "current": 14,  # 1050 / 75
            "previousMonth": 14,  # 522.5 / 38 = 13.75 → 14
            "change": 1.8,  # (14 - 13.75) / 13.75 x 100 = 1.818…
        },
        "utilizationRate": {
            "current": 68,  # 75 / 111 x 100 = 67.57
            "previousMonth": 90,  # 38 / 42 x 100 = 90.48
            "change": -22.9,  # 67.5676 - 90.4762 = -22.9086
        },
        # A: 30 expected vs 30 served; B: 30 vs 40 (the day with expected 0 is ignored) → 1
        "contractsWithDeviation": 1,
        # Mar 10 .. Mar 17 with an expected quantity: B 25 x 15 + A 11 x 12.5 = 512.5 → 513
        "upcomingServicesWeek": {"count": 2, "estimatedCost": 513},
    }
    days = fx["days"]
    recent = body["recentServices"]
    assert [r["id"] for r in recent] == [
        str(days[k].pk) for k in ("b10", "a09", "b05", "b04", "a03", "a02")
    ]
    assert recent[0] == {
        "id": str(days["b10"].pk),
        "date": "2026-03-10",
        "contractId": str(fx["b"].pk),
        "cateringCompanyName": "Sabores Corporativos",
        "clientCompanyName": "TechCorp Argentina",
        "expected": 25,
        "actual": None,
        "deviation": None,
        "cost": None,
        "status": "PENDING",
    }
    assert recent[4] == {
        "id": str(days["a03"].pk),
        "date": "2026-03-03",
        "contractId": str(fx["a"].pk),
        "cateringCompanyName": "Delicias del Sur",
        "clientCompanyName": "TechCorp Argentina",
        "expected": 10,
        "actual": 9,
        "deviation": -1,
        "cost": 112.5,
        "status": "CONFIRMED",
    }
    assert [r["cost"] for r in recent] == [None, None, 75, 600, 112.5, 262.5]


def test_client_without_contracts_gets_zeros(cast: Any) -> None:
    build_fixture(cast)
    ServiceDay.objects.filter(contract__client_company=cast.other_client.company).delete()
    body = metrics(cast, cast.other_client.admin).json()
    assert body == ZEROS


def test_brand_new_client_gets_zeros(cast: Any) -> None:
    assert metrics(cast, cast.other_client.employee).json() == ZEROS


def test_other_clients_data_never_leaks(cast: Any) -> None:
    build_fixture(cast)
    body = metrics(cast, cast.other_client.manager).json()
    assert body["budget"]["consumed"] == 1550  # only contract C: 100 x 15.5
    assert [r["clientCompanyName"] for r in body["recentServices"]] == ["Startup Hub"]


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "EMPLOYEE"])
def test_caterers_read_the_revenue_of_their_own_contracts(cast: Any, role: str) -> None:
    """No longer the original's 403: any member of a caterer reads its mirror view (the
    hand-computed caterer fixture is in test_finance_metrics_caterer.py)."""
    fx = build_fixture(cast)
    mine = metrics(cast, cast.catering.user(role))
    assert mine.status_code == 200
    body = mine.json()
    # A (262.5 + 112.5) and C (100 x 15.5): both clients' spend with this caterer
    assert body["budget"]["consumed"] == 1925
    recent = body["recentServices"]
    assert [r["date"] for r in recent] == ["2026-03-09", "2026-03-03", "2026-03-02", "2026-03-02"]
    assert str(fx["b"].pk) not in {r["contractId"] for r in recent}
    assert {r["cateringCompanyName"] for r in recent} == {"Delicias del Sur"}
    assert {r["clientCompanyName"] for r in recent} == {"TechCorp Argentina", "Startup Hub"}
    theirs = metrics(cast, cast.other_catering.user(role)).json()
    assert theirs["budget"]["consumed"] == 675  # B alone: 600 + 75
    # what the two clients spend (1050 + 1550) is what the two caterers earn
    assert 1925 + 675 == 1050 + 1550
    assert cast.api().get("/api/contracts/finance-metrics").status_code == 401


def test_recent_services_are_capped_at_ten_and_exclude_the_future(cast: Any) -> None:
    contract = make_contract(cast)
    for day in range(1, 15):
        make_day(contract, date(2026, 3, day), expected_quantity=20)
    recent = metrics(cast).json()["recentServices"]
    assert [r["date"] for r in recent] == [f"2026-03-{d:02d}" for d in range(10, 0, -1)]


def test_previous_month_windows_cross_the_year(cast: Any) -> None:
    contract = make_contract(cast, price_per_service=Decimal("10.00"))
    make_day(contract, date(2025, 12, 31), expected_quantity=5, served_quantity=5, status=CONFIRMED)
    make_day(contract, date(2026, 1, 1), expected_quantity=5, served_quantity=7, status=CONFIRMED)
    with time_machine.travel(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), tick=False):
        body = cast.api(cast.client.employee).get("/api/contracts/finance-metrics").json()
    assert body["budget"]["previousMonth"] == 50
    assert body["budget"]["consumed"] == 70
    assert body["budget"]["projectedEndOfMonth"] == 2170  # 70 / 1 x 31
    assert body["kpis"]["costPerPerson"] == {"current": 10, "previousMonth": 10, "change": 0}
    assert body["kpis"]["utilizationRate"] == {"current": 140, "previousMonth": 100, "change": 40}


def test_upcoming_week_reads_into_the_next_month(cast: Any) -> None:
    """Near a month's end the upcoming week (today .. today + 7) runs into the next month: its
    days there count as upcoming, not in the month's budget; the day after the week not at all.
    The previous month's days count in its figures only, whatever else is read."""
    contract = make_contract(cast, price_per_service=Decimal("10.00"))
    ok = {"status": CONFIRMED}
    make_day(contract, date(2026, 2, 27), expected_quantity=4, served_quantity=6, **ok)
    make_day(contract, date(2026, 3, 27), expected_quantity=8, served_quantity=8, **ok)
    make_day(contract, date(2026, 3, 30), expected_quantity=3)  # this month, upcoming
    make_day(contract, date(2026, 4, 2), expected_quantity=5)  # next month, upcoming
    make_day(contract, date(2026, 4, 3))  # upcoming, nothing expected yet
    make_day(contract, date(2026, 4, 5), expected_quantity=7)  # the day after the week
    with time_machine.travel(datetime(2026, 3, 28, 9, tzinfo=UTC), tick=False):
        body = cast.api(cast.client.employee).get("/api/contracts/finance-metrics").json()
    assert body["kpis"]["upcomingServicesWeek"] == {"count": 2, "estimatedCost": 80}
    assert body["budget"]["consumed"] == 80
    assert body["budget"]["estimated"] == 110  # (8 + 3) x 10: April's days are not March's
    assert body["budget"]["previousMonth"] == 60
    assert body["kpis"]["utilizationRate"] == {"current": 73, "previousMonth": 150, "change": -77.3}


def test_query_count_does_not_grow_with_rows(cast: Any) -> None:
    small = make_contract(cast)
    make_day(small, date(2026, 3, 2), expected_quantity=20, served_quantity=20, status=CONFIRMED)
    big_contracts = [
        make_contract(cast, client_company=cast.other_client.company),
        make_contract(
            cast,
            catering_company=cast.other_catering.company,
            client_company=cast.other_client.company,
        ),
    ]
    ServiceDay.objects.bulk_create(
        ServiceDay(
            contract=contract,
            service_date=date(2026, 2, 1) + timedelta(days=i),
            expected_quantity=20,
            served_quantity=21,
            status=CONFIRMED,
        )
        for contract in big_contracts
        for i in range(50)
    )
    counts = []
    for user in (cast.client.employee, cast.other_client.employee):
        with CaptureQueriesContext(connection) as ctx:
            assert metrics(cast, user).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def _aggregate_params(company: Any, now: datetime = NOW) -> Any:
    """The parameters ``finance_metrics_for`` passes to its aggregate (its first statement)."""
    seen: list[Any] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(params)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        selectors.finance_metrics_for(company=company, now=now)
    return seen[0]


@pytest.mark.postgres
def test_both_forms_of_the_aggregate_agree_on_postgresql(cast: Any) -> None:
    """PostgreSQL runs the LATERAL form, SQLite the GROUP BY one (servicedays/selectors.py):
    on the same rows, both give the same ten figures, for every company of the cast, a
    contract without a day in the windows included."""
    build_fixture(cast)
    make_contract(cast, catering_company=cast.other_catering.company)  # no days at all
    late = make_contract(cast, price_per_service=Decimal("9.00"), status=ContractStatus.PAUSED)
    make_day(late, date(2026, 3, 30), expected_quantity=3)
    make_day(late, date(2026, 4, 2), expected_quantity=5)  # the upcoming week's, in April
    for now in (NOW, datetime(2026, 3, 28, 9, tzinfo=UTC)):
        _assert_forms_agree(cast, now)


def _assert_forms_agree(cast: Any, now: datetime) -> None:
    with time_machine.travel(now, tick=False):
        for company in (cast.client, cast.other_client, cast.catering, cast.other_catering):
            params = _aggregate_params(company.company, now)
            side = selectors._SIDE_COLUMN[company.company.company_type]
            rows = []
            for lateral in (True, False):
                with connection.cursor() as cursor:
                    sql = selectors._build_totals_sql(side, lateral=lateral)
                    cursor.execute(sql, params)
                    rows.append(cursor.fetchall())
            assert rows[0] == rows[1]
            assert rows[0][0][1] is not None  # every company here has served days


def test_recent_services_are_the_months_ten_newest_on_every_day_of_it(cast: Any) -> None:
    """The statement reads the last days first and the rest of the month only when those hold
    fewer than ten: on every day of a month, with gaps of several days (a weekend, a week off)
    and several contracts serving the same day, it returns what a plain sort of the month's
    days up to today gives (date descending, then id). Also for the caterer's side."""
    contracts = [
        make_contract(cast),
        make_contract(cast, catering_company=cast.other_catering.company),
    ]
    other = make_contract(cast, client_company=cast.other_client.company)  # not the client's
    # March 2026: the first contract serves Mon-Fri but not the week of the 16th; the second
    # serves only on the 2nd-4th and the 25th-31st; one day of February, before the month.
    for day in range(1, 32):
        served_date = date(2026, 3, day)
        if served_date.weekday() < 5 and not 16 <= day <= 20:
            make_day(contracts[0], served_date, expected_quantity=day)
        if 2 <= day <= 4 or day >= 25:
            make_day(contracts[1], served_date, expected_quantity=day)
        make_day(other, served_date, expected_quantity=1)
    make_day(contracts[0], date(2026, 2, 27), expected_quantity=1)
    for company, mine in ((cast.client.company, contracts), (cast.catering.company, None)):
        owned = ServiceDay.objects.filter(
            **({"contract__in": mine} if mine else {"contract__catering_company": company})
        )
        for day in range(1, 32):
            month_so_far = owned.filter(
                service_date__gte=date(2026, 3, 1), service_date__lte=date(2026, 3, day)
            )
            expected = [
                str(pk)
                for pk in month_so_far.order_by("-service_date", "pk").values_list("pk", flat=True)[
                    :10
                ]
            ]
            now = datetime(2026, 3, day, 23, 59, tzinfo=UTC)
            got = selectors.finance_metrics_for(company=company, now=now).recent_services
            assert [r.id for r in got] == expected, (company.name, day)
