"""GET /api/contracts/finance-metrics for a CATERING company: the client's view mirrored.

The same keys and formulas over the contracts the caterer serves (its revenue instead of a
client's spend; README "Finance metrics"), on a hand-computed fixture under a stopped clock;
tenant isolation, the fixed query count, and the read cache's invalidation by every writer of
the caterer's service days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chefops.testing.factories import CateringFactory
from companies.models import Company
from contracts import services as contract_services
from contracts.models import Contract, ContractStatus
from servicedays import jobs
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day, post_json

URL = "/api/contracts/finance-metrics"
NOW = datetime(2026, 4, 15, 12, tzinfo=UTC)  # day 15 of a 30-day month
CONFIRMED = ServiceDayStatus.CONFIRMED
ROLES = ["ADMIN", "MANAGER", "EMPLOYEE"]

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


def metrics(cast: Any, user: Any, now: datetime = NOW) -> Any:
    with time_machine.travel(now, tick=False):
        return cast.api(user).get(URL)


def build_fixture(cast: Any) -> dict[str, Any]:
    """The caterer "Delicias del Sur" serves two clients through three contracts (every
    status counts); another caterer's contract with the same client must never show."""
    a = make_contract(cast, price_per_service=Decimal("12.00"))  # TechCorp, ACTIVE
    b = make_contract(
        cast,
        client_company=cast.other_client.company,  # Startup Hub
        price_per_service=Decimal("8.50"),
        status=ContractStatus.PAUSED,
    )
    c = make_contract(
        cast, price_per_service=Decimal("20.00"), status=ContractStatus.TERMINATED
    )  # TechCorp again
    d = make_contract(  # Sabores Corporativos → TechCorp: not the caller's
        cast, catering_company=cast.other_catering.company, price_per_service=Decimal("100.00")
    )
    ok = {"status": CONFIRMED}
    days = {
        "a_feb27": make_day(a, date(2026, 2, 27), expected_quantity=10, served_quantity=10, **ok),
        "a_mar03": make_day(a, date(2026, 3, 3), expected_quantity=10, served_quantity=10, **ok),
        "a_mar31": make_day(a, date(2026, 3, 31), expected_quantity=20, served_quantity=18, **ok),
        "a_apr01": make_day(a, date(2026, 4, 1), expected_quantity=20, served_quantity=25, **ok),
        "a_apr08": make_day(a, date(2026, 4, 8), expected_quantity=10, served_quantity=10, **ok),
        "a_apr15": make_day(a, date(2026, 4, 15), expected_quantity=30),
        "a_apr22": make_day(a, date(2026, 4, 22), expected_quantity=5),
        "a_apr23": make_day(a, date(2026, 4, 23), expected_quantity=7),
        "b_mar10": make_day(b, date(2026, 3, 10), expected_quantity=40, served_quantity=40, **ok),
        "b_apr02": make_day(b, date(2026, 4, 2), expected_quantity=40, served_quantity=30, **ok),
        "b_apr09": make_day(b, date(2026, 4, 9), expected_quantity=0, served_quantity=5, **ok),
        "b_apr16": make_day(b, date(2026, 4, 16), expected_quantity=12),
        "c_apr03": make_day(c, date(2026, 4, 3), expected_quantity=10, served_quantity=9, **ok),
        "c_apr10": make_day(c, date(2026, 4, 10)),
        "d_apr01": make_day(d, date(2026, 4, 1), expected_quantity=50, served_quantity=50, **ok),
        "d_apr15": make_day(d, date(2026, 4, 15), expected_quantity=10),
    }
    return {"a": a, "b": b, "c": c, "d": d, "days": days}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_hand_computed_caterer_metrics(cast: Any, role: str) -> None:
    fx = build_fixture(cast)
    res = metrics(cast, cast.catering.user(role))
    assert res.status_code == 200, res.content
    body = res.json()
    assert body["budget"] == {
        # April revenue: A 12 x (25 + 10) = 420; B 8.5 x (30 + 5) = 297.5; C 20 x 9 = 180
        "consumed": 898,  # 897.5, half up
        # April expected x price, any status: A 12 x 72 = 864; B 8.5 x 52 = 442; C 20 x 10 = 200
        "estimated": 1506,
        "projectedEndOfMonth": 1795,  # 897.5 / 15 x 30
        # March: A 12 x (10 + 18) = 336; B 8.5 x 40 = 340 (February's day is outside)
        "previousMonth": 676,
    }
    assert body["kpis"] == {
        "costPerPerson": {  # revenue per person served
            "current": 11,  # 897.5 / 79 = 11.36
            "previousMonth": 10,  # 676 / 68 = 9.94
            "change": 14.3,  # (11.3608 - 9.9412) / 9.9412 x 100 = 14.28
        },
        "utilizationRate": {
            "current": 59,  # 79 served / 134 expected = 58.96 %
            "previousMonth": 97,  # 68 / 70 = 97.14 %
            "change": -38.2,  # 58.955 - 97.143 = -38.19 points
        },
        # A: 35 served vs 30 expected (16.7 %) and B: 30 vs 40 (25 %; the day expecting 0 is
        # left out) deviate; C: 9 vs 10 is exactly 10 %, not more
        "contractsWithDeviation": 2,
        # Apr 15 .. Apr 22 with an expected quantity: A 30 and 5, B 12 (not A's Apr 23, nor
        # the other caterer's Apr 15) → 3 days, 12 x 35 + 8.5 x 12 = 522
        "upcomingServicesWeek": {"count": 3, "estimatedCost": 522},
    }
    days = fx["days"]
    recent = body["recentServices"]
    # April up to today, newest first; the other caterer's days never show
    assert [r["id"] for r in recent] == [
        str(days[k].pk)
        for k in ("a_apr15", "c_apr10", "b_apr09", "a_apr08", "c_apr03", "b_apr02", "a_apr01")
    ]
    assert [r["clientCompanyName"] for r in recent] == [
        "TechCorp Argentina",
        "TechCorp Argentina",
        "Startup Hub",
        "TechCorp Argentina",
        "TechCorp Argentina",
        "Startup Hub",
        "TechCorp Argentina",
    ]
    assert {r["cateringCompanyName"] for r in recent} == {"Delicias del Sur"}
    assert [r["cost"] for r in recent] == [None, None, 42.5, 120, 180, 255, 300]
    assert [r["deviation"] for r in recent] == [None, None, 5, 0, -1, -10, 5]
    assert recent[2] == {
        "id": str(days["b_apr09"].pk),
        "date": "2026-04-09",
        "contractId": str(fx["b"].pk),
        "cateringCompanyName": "Delicias del Sur",
        "clientCompanyName": "Startup Hub",
        "expected": 0,
        "actual": 5,
        "deviation": 5,
        "cost": 42.5,  # the day's revenue, unrounded
        "status": "CONFIRMED",
    }
    assert recent[0]["status"] == "PENDING" and recent[0]["actual"] is None


@pytest.mark.django_db
def test_each_party_reads_its_own_side_of_a_shared_contract(cast: Any) -> None:
    fx = build_fixture(cast)
    # The other caterer serves only D: 100 x 50 in April, 100 x 10 upcoming.
    theirs = metrics(cast, cast.other_catering.employee).json()
    assert theirs["budget"] == {
        "consumed": 5000,
        "estimated": 6000,
        "projectedEndOfMonth": 10000,
        "previousMonth": 0,
    }
    assert theirs["kpis"]["upcomingServicesWeek"] == {"count": 1, "estimatedCost": 1000}
    assert theirs["kpis"]["costPerPerson"] == {"current": 100, "previousMonth": 0, "change": 0}
    assert [r["contractId"] for r in theirs["recentServices"]] == [str(fx["d"].pk)] * 2
    # Startup Hub, the client of B alone, spends exactly what the caterer earns on B.
    client = metrics(cast, cast.other_client.employee).json()
    assert client["budget"] == {
        "consumed": 298,  # 297.5
        "estimated": 442,
        "projectedEndOfMonth": 595,
        "previousMonth": 340,
    }
    assert {r["contractId"] for r in client["recentServices"]} == {str(fx["b"].pk)}


@pytest.mark.django_db
def test_a_caterer_without_contracts_gets_zeros(cast: Any) -> None:
    build_fixture(cast)
    newcomer = CateringFactory.create(name="Nueva Cocina", email="nueva@example.com")
    from chefops.testing.cast import make_tenant

    tenant = make_tenant(newcomer)
    for user in (tenant.admin, tenant.employee):
        res = metrics(cast, user)
        assert res.status_code == 200
        assert res.json() == ZEROS


@pytest.mark.django_db
def test_a_caterer_whose_contracts_have_no_days_gets_zeros(cast: Any) -> None:
    make_contract(cast, catering_company=cast.other_catering.company)
    assert metrics(cast, cast.other_catering.manager).json() == ZEROS


@pytest.mark.django_db
def test_without_a_token_it_is_401(cast: Any) -> None:
    res = cast.api().get(URL)
    assert res.status_code == 401
    assert res.json() == {"message": "Unauthorized", "statusCode": 401}


@pytest.mark.django_db
def test_query_count_does_not_grow_with_contracts(cast: Any) -> None:
    """One contract with one day, against 30 contracts with 40 days each: the same queries,
    and as many as a client's read."""
    small = make_contract(cast)
    make_day(small, date(2026, 4, 1), expected_quantity=20, served_quantity=20, status=CONFIRMED)
    clients = [cast.client.company, cast.other_client.company]
    big = [
        make_contract(
            cast,
            catering_company=cast.other_catering.company,
            client_company=clients[i % 2],
            status=ContractStatus.PAUSED,
        )
        for i in range(30)
    ]
    ServiceDay.objects.bulk_create(
        ServiceDay(
            contract=contract,
            service_date=date(2026, 3, 1) + timedelta(days=i),
            expected_quantity=20,
            served_quantity=19 + i % 3,
            status=CONFIRMED,
        )
        for contract in big
        for i in range(40)
    )
    counts = []
    for user in (cast.catering.employee, cast.other_catering.employee, cast.client.employee):
        with CaptureQueriesContext(connection) as ctx:
            res = metrics(cast, user)
        assert res.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] == counts[2]
    big_body = metrics(cast, cast.other_catering.employee).json()
    assert len(big_body["recentServices"]) == 10
    # 30 contracts x April 1..9 (served 20, 21, 19, … = 180 for 180 expected) at 15.50
    assert big_body["budget"]["consumed"] == 83700
    assert big_body["kpis"]["contractsWithDeviation"] == 0


# --- The read cache ----------------------------------------------------------------------------
# As servicedays/tests/test_read_cache.py: real transactions (invalidation happens on commit),
# the configured cache (Redis when REDIS_URL is set), every test with the principal read from
# the database and from the principal cache (whose round trip then carries the read's lookup).

CACHE_NOW = datetime(2026, 1, 21, 9, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture(params=[0, 300], ids=["principal-query", "principal-cached"])
def read_cache(settings: Any, request: Any) -> Iterator[None]:
    settings.READ_CACHE_SECONDS = 300
    settings.AUTH_CACHE_SECONDS = request.param
    cache.clear()
    with time_machine.travel(CACHE_NOW, tick=False):
        yield
    cache.clear()


def read(cast: Any, user: Any) -> tuple[dict[str, Any], int]:
    """(the body, the queries the read ran besides authentication)."""
    api = cast.api(user)
    api.get("/api/auth/session-status")  # the minute's activity UPDATE happens here
    with CaptureQueriesContext(connection) as queries:
        response = api.get(URL)
    assert response.status_code == 200, response.content
    data_queries = [q for q in queries.captured_queries if "companies_user" not in q["sql"]]
    return response.json(), len(data_queries)


def _client_confirms_expected(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    day = make_day(contract, date(2026, 1, 28))
    cached()
    res = post_json(
        cast.api(cast.client.employee),
        f"/api/service-days/{day.pk}/confirm-expected",
        {"expectedQuantity": 42},
    )
    assert res.status_code == 201, res.content


def _caterer_confirms_served(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    day = make_day(contract, date(2026, 1, 19), expected_quantity=20)
    cached()
    res = post_json(
        cast.api(cast.catering.employee),
        f"/api/service-days/{day.pk}/confirm-served",
        {"servedQuantity": 18},
    )
    assert res.status_code == 201, res.content


def _fallback_job(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    make_day(contract, date(2026, 1, 21))  # today, past its 24 h notice: the minimum applies
    cached()
    jobs.service_days_apply_fallback(now=CACHE_NOW)


def _generate_endpoint(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    cached()
    res = post_json(
        cast.api(cast.catering.manager),
        f"/api/contracts/{contract.pk}/service-days/generate",
        {"fromDate": "2026-01-19", "toDate": "2026-01-23"},
    )
    assert res.status_code == 201, res.content


def _daily_generation_job(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    cached()
    jobs.service_days_generate_upcoming(days=9, now=CACHE_NOW)


def _day_saved(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    day = make_day(contract, date(2026, 1, 19), expected_quantity=20)
    cached()
    day.expected_quantity = 30  # e.g. in the admin
    day.save()


def _contract_paused(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    make_day(contract, date(2026, 1, 19), expected_quantity=20)
    cached()
    contract_services.contract_pause(contract_id=contract.pk, actor=cast.client.admin)


def _client_renamed(cast: Any, contract: Contract, cached: Callable[[], None]) -> None:
    make_day(contract, date(2026, 1, 19), expected_quantity=20)
    cached()
    client = Company.objects.get(pk=cast.client.company.pk)
    client.name = "TechCorp Renamed"
    client.save()


def _staff_confirm_served_in_the_admin(
    cast: Any, contract: Contract, cached: Callable[[], None]
) -> None:
    day = make_day(contract, date(2026, 1, 19), expected_quantity=20)
    cached()
    staff = get_user_model().objects.create_superuser(email="ops@example.com", password="x-pass-1")
    browser = Client()
    browser.force_login(staff)
    res = browser.post(f"/admin/servicedays/serviceday/{day.pk}/change/", {"served_quantity": "17"})
    assert res.status_code == 302


# writer, then what the caterer's metrics show afterwards
Writer = Callable[[Any, Contract, Callable[[], None]], None]

# Each writer calls ``cached()`` (two reads, the second a hit) right before it writes.
WRITERS: dict[str, tuple[Writer, Callable[[dict[str, Any]], bool]]] = {
    "client confirms expected": (
        _client_confirms_expected,
        lambda body: body["budget"]["estimated"] == 651,  # 42 x 15.5
    ),
    "caterer confirms served": (
        _caterer_confirms_served,
        lambda body: body["budget"]["consumed"] == 279,  # 18 x 15.5
    ),
    "fallback job": (
        _fallback_job,
        lambda body: body["recentServices"][0]["expected"] == 10,  # the contract minimum
    ),
    "generate endpoint": (
        _generate_endpoint,  # Mon, Wed (today); Friday is ahead
        lambda body: [r["date"] for r in body["recentServices"]] == ["2026-01-21", "2026-01-19"],
    ),
    "daily generation job": (
        _daily_generation_job,
        lambda body: [r["date"] for r in body["recentServices"]] == ["2026-01-21"],
    ),
    "service day saved": (_day_saved, lambda body: body["budget"]["estimated"] == 465),
    "contract paused": (
        _contract_paused,  # every status counts: the same figures, recomputed
        lambda body: body["budget"]["estimated"] == 310,
    ),
    "staff confirm served in the admin": (
        _staff_confirm_served_in_the_admin,
        lambda body: body["budget"]["consumed"] == 264,  # 17 x 15.5 = 263.5, half up
    ),
    "client renamed": (
        _client_renamed,
        lambda body: body["recentServices"][0]["clientCompanyName"] == "TechCorp Renamed",
    ),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_of_the_caterers_days_invalidates_its_metrics(
    cast: Any, read_cache: None, writer: str
) -> None:
    contract = make_contract(cast)  # Delicias del Sur → TechCorp, Mon/Wed/Fri, 15.50, min 10
    write, shows = WRITERS[writer]
    before: list[dict[str, Any]] = []

    def cached() -> None:
        read(cast, cast.catering.employee)
        body, ran = read(cast, cast.catering.employee)
        assert ran == 0  # the second read is a hit
        before.append(body)

    write(cast, contract, cached)
    assert before, "the writer read the metrics before writing"
    body, ran = read(cast, cast.catering.employee)
    assert ran >= 1, "the caterer's cached metrics outlived the write"
    assert shows(body), body


@pytest.mark.django_db(transaction=True)
def test_a_write_of_another_caterer_leaves_the_entry_cached(cast: Any, read_cache: None) -> None:
    mine = make_contract(cast)
    theirs = make_contract(cast, catering_company=cast.other_catering.company)
    make_day(mine, date(2026, 1, 19), expected_quantity=20)
    day = make_day(theirs, date(2026, 1, 28))
    mine_body = read(cast, cast.catering.employee)[0]
    client_body = read(cast, cast.client.employee)[0]
    # one URL, an entry per company: the client reads both contracts, the caterer its own
    assert mine_body["budget"]["estimated"] == 310
    assert client_body["budget"]["estimated"] == 310
    res = post_json(
        cast.api(cast.client.employee),
        f"/api/service-days/{day.pk}/confirm-expected",
        {"expectedQuantity": 40},
    )
    assert res.status_code == 201
    assert read(cast, cast.catering.employee) == (mine_body, 0)
    client_after, ran = read(cast, cast.client.employee)
    assert ran >= 1 and client_after["budget"]["estimated"] == 310 + 620
    other_body, _ran = read(cast, cast.other_catering.employee)
    assert other_body["budget"]["estimated"] == 620
