"""The per-tenant read cache (chefops/readcache.py): hits, and invalidation by every writer.

Runs in real transactions (invalidation happens on commit) against the configured cache:
Redis when REDIS_URL is set (the CI's first run), the in-process cache otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chefops import readcache
from companies.models import Company
from contracts import services as contract_services
from contracts.models import Contract
from servicedays import jobs
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day, post_json

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 1, 21, 9, 0, tzinfo=UTC)  # a Wednesday
RANGE = "from=2026-01-19&to=2026-01-30"


@pytest.fixture(autouse=True, params=[0, 300], ids=["principal-query", "principal-cached"])
def read_cache(settings: Any, request: Any) -> Iterator[None]:
    """Every test twice: with the principal from the database, and from the principal cache
    (whose round trip then carries the read's lookup too)."""
    settings.READ_CACHE_SECONDS = 300
    settings.AUTH_CACHE_SECONDS = request.param
    cache.clear()
    with time_machine.travel(NOW, tick=False):
        yield
    cache.clear()


def urls(contract: Contract) -> dict[str, str]:
    return {
        "list": "/api/contracts",
        "range": f"/api/contracts/{contract.pk}/service-days?{RANGE}",
        "weekly": f"/api/contracts/{contract.pk}/reports/weekly?weekStart=2026-01-26",
    }


def read(cast: Any, url: str, user: Any = None) -> tuple[Any, int]:
    """(the response, the queries it ran besides authentication)."""
    api = cast.api(user or cast.client.employee)
    api.get("/api/auth/session-status")  # the minute's activity UPDATE happens here
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    data_queries = [q for q in queries.captured_queries if "companies_user" not in q["sql"]]
    return response, len(data_queries)


def lookups(result: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("chefops_read_cache_lookups_total", {"result": result})
    return value or 0.0


def test_a_second_read_is_served_from_the_cache_with_its_headers(cast: Any) -> None:
    contract = make_contract(cast)
    make_day(contract, date(2026, 1, 19))
    hits, misses = lookups("hit"), lookups("miss")
    for name, url in {**urls(contract), "finance": "/api/contracts/finance-metrics"}.items():
        first, ran = read(cast, url)
        assert ran >= 1, name
        second, ran_again = read(cast, url)
        assert ran_again == 0, name
        assert second.json() == first.json()
        assert second.get("X-Total-Count") == first.get("X-Total-Count")
        assert second.get("Link") == first.get("Link")
    assert (lookups("hit") - hits, lookups("miss") - misses) == (4, 4)


def test_a_hit_is_one_cache_round_trip_with_the_principal_cache(
    cast: Any, settings: Any, monkeypatch: Any
) -> None:
    contract = make_contract(cast)
    make_day(contract, date(2026, 1, 19))
    calls: list[list[str]] = []
    real_get_many = cache.get_many

    def counting_get_many(keys: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(list(keys))
        return real_get_many(keys, *args, **kwargs)

    monkeypatch.setattr(cache, "get_many", counting_get_many)
    for url in [*urls(contract).values(), "/api/contracts/finance-metrics"]:
        read(cast, url)  # computes and stores (and caches the principal)
        read(cast, url)
        calls.clear()
        _response, ran = read(cast, url)
        assert ran == 0
        if settings.AUTH_CACHE_SECONDS:
            # session-status then the read: one MGET each, the read's keys in the principal's
            assert len(calls) == 2, url
            assert any(key.startswith("rc:e:") for key in calls[1]), url
        else:
            assert len(calls) == 1, url  # the read's own lookup; the principal is a query


def test_other_tenants_and_other_urls_do_not_share_entries(cast: Any) -> None:
    mine = make_contract(cast)
    theirs = make_contract(
        cast, catering_company=cast.other_catering.company, client_company=cast.other_client.company
    )
    mine_body = read(cast, "/api/contracts")[0].json()
    their_body = read(cast, "/api/contracts", cast.other_client.employee)[0].json()
    assert [c["id"] for c in mine_body] == [str(mine.pk)]
    assert [c["id"] for c in their_body] == [str(theirs.pk)]
    # a party check still runs: the other client is refused, never served my cached entry
    read(cast, urls(mine)["range"])
    refused = cast.api(cast.other_client.employee).get(urls(mine)["range"])
    assert refused.status_code == 403
    # a write of the other tenant leaves my entry valid
    make_day(theirs, date(2026, 1, 19))
    assert read(cast, "/api/contracts")[1] == 0


def test_confirmations_through_the_api_show_at_once_for_both_parties(cast: Any) -> None:
    contract = make_contract(cast)
    day = make_day(contract, date(2026, 1, 28))
    for url in urls(contract).values():
        read(cast, url)
        read(cast, url, cast.catering.employee)
    read(cast, "/api/contracts/finance-metrics")
    res = post_json(
        cast.api(cast.client.employee),
        f"/api/service-days/{day.pk}/confirm-expected",
        {"expectedQuantity": 42},
    )
    assert res.status_code == 201
    for user in (cast.client.employee, cast.catering.employee):
        body, ran = read(cast, urls(contract)["range"], user)
        assert ran >= 1 and body.json()[0]["expectedQuantity"] == 42
        weekly = read(cast, urls(contract)["weekly"], user)[0].json()
        assert weekly["summary"]["totalExpected"] == 42
    finance = read(cast, "/api/contracts/finance-metrics")[0].json()
    assert finance["budget"]["estimated"] == round(42 * 15.5)


def test_a_confirmation_invalidates_only_its_contract_and_the_finance_metrics(cast: Any) -> None:
    confirmed = make_contract(cast)
    untouched = make_contract(cast, catering_company=cast.other_catering.company)
    day = make_day(confirmed, date(2026, 1, 28))
    make_day(untouched, date(2026, 1, 28))
    finance = "/api/contracts/finance-metrics"
    reads = [*urls(confirmed).values(), *urls(untouched).values(), finance]
    for url in reads:
        read(cast, url)
    read(cast, urls(confirmed)["range"], cast.catering.employee)
    read(cast, urls(untouched)["range"], cast.other_catering.employee)
    res = post_json(
        cast.api(cast.client.employee),
        f"/api/service-days/{day.pk}/confirm-expected",
        {"expectedQuantity": 42},
    )
    assert res.status_code == 201
    recomputed = {url for url in reads if read(cast, url)[1] > 0}
    assert recomputed == {urls(confirmed)["range"], urls(confirmed)["weekly"], finance}
    # for the caterer too, and a save of a day (e.g. in the admin) likewise
    assert read(cast, urls(confirmed)["range"], cast.catering.employee)[1] > 0
    assert read(cast, urls(untouched)["range"], cast.other_catering.employee)[1] == 0
    other = ServiceDay.objects.get(contract=untouched)
    other.expected_quantity = 11
    other.save()
    assert read(cast, urls(untouched)["range"])[0].json()[0]["expectedQuantity"] == 11
    assert read(cast, urls(confirmed)["range"])[1] == 0


def test_jobs_and_set_based_writers_invalidate(cast: Any) -> None:
    contract = make_contract(cast, notice_period_hours=24)
    make_day(contract, date(2026, 1, 21))  # today, past its deadline: the fallback applies
    url = urls(contract)["range"]
    assert [d["expectedQuantity"] for d in read(cast, url)[0].json()] == [None]
    jobs.service_days_apply_fallback(now=NOW)
    assert [d["expectedQuantity"] for d in read(cast, url)[0].json()] == [10]
    # the daily job inserts days (Mon/Wed/Fri from today on)
    jobs.service_days_generate_upcoming(days=9, now=NOW)
    dates = [d["serviceDate"] for d in read(cast, url)[0].json()]
    assert dates == ["2026-01-21", "2026-01-23", "2026-01-26", "2026-01-28", "2026-01-30"]
    # the generate endpoint (bulk insert, no signals)
    ServiceDay.objects.filter(service_date__gt=date(2026, 1, 21)).delete()
    readcache.invalidate_all()  # a bulk delete sends no signal (only retention does one)
    assert len(read(cast, url)[0].json()) == 1
    res = post_json(
        cast.api(cast.catering.manager),
        f"/api/contracts/{contract.pk}/service-days/generate",
        {"fromDate": "2026-01-22", "toDate": "2026-01-30"},
    )
    assert res.status_code == 201
    assert len(read(cast, url)[0].json()) == 5  # the 21st, then the 23rd .. the 30th


def test_the_per_contract_generation_invalidates_that_contract_only(cast: Any) -> None:
    """What runs after a contract is created or resumed: a set-based insert, no signals."""
    contract = make_contract(cast)
    other = make_contract(cast, client_company=cast.other_client.company)
    url, other_url = urls(contract)["range"], urls(other)["range"]
    finance = "/api/contracts/finance-metrics"
    make_day(contract, date(2026, 1, 19), expected_quantity=12)
    read(cast, url)
    read(cast, finance)
    read(cast, other_url, cast.other_client.employee)
    assert jobs.service_days_generate_for_contracts([contract.pk], now=NOW) == 4
    dates = [d["serviceDate"] for d in read(cast, url)[0].json()]
    assert dates == ["2026-01-19", "2026-01-21", "2026-01-23", "2026-01-26", "2026-01-28"]
    assert read(cast, finance)[1] > 0  # the parties' day-wide figures are recomputed
    assert read(cast, other_url, cast.other_client.employee)[1] == 0  # still a hit
    assert jobs.service_days_generate_for_contracts([contract.pk], now=NOW) == 0
    assert read(cast, url)[1] == 0  # nothing inserted, nothing invalidated


def test_model_saves_contract_transitions_and_company_renames_invalidate(cast: Any) -> None:
    contract = make_contract(cast)
    day = make_day(contract, date(2026, 1, 19))
    url = urls(contract)["range"]
    read(cast, url)
    day.status, day.served_quantity = ServiceDayStatus.CONFIRMED, 7  # e.g. the admin
    day.save()
    assert read(cast, url)[0].json()[0]["servedQuantity"] == 7

    assert read(cast, "/api/contracts")[0].json()[0]["status"] == "ACTIVE"
    contract_services.contract_pause(contract_id=contract.pk, actor=cast.client.admin)
    assert read(cast, "/api/contracts")[0].json()[0]["status"] == "PAUSED"

    caterer = Company.objects.get(pk=cast.catering.company.pk)
    caterer.name = "Renamed Caterer"
    caterer.save()
    assert read(cast, "/api/contracts")[0].json()[0]["cateringName"] == "Renamed Caterer"


def test_finance_metrics_are_recomputed_on_a_new_day(cast: Any) -> None:
    contract = make_contract(cast)
    make_day(contract, date(2026, 1, 27), expected_quantity=20)
    url = "/api/contracts/finance-metrics"
    first = read(cast, url)[0].json()
    assert read(cast, url)[1] == 0
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        _body, ran = read(cast, url)
        assert ran >= 1
    assert first["kpis"]["upcomingServicesWeek"]["count"] == 1


def test_without_the_setting_every_read_computes(cast: Any, settings: Any) -> None:
    settings.READ_CACHE_SECONDS = 0
    contract = make_contract(cast)
    url = urls(contract)["range"]
    read(cast, url)
    assert read(cast, url)[1] >= 1


def test_entries_are_per_media_type_and_errors_are_never_stored(cast: Any) -> None:
    contract = make_contract(cast)
    make_day(contract, date(2026, 1, 19))
    url = urls(contract)["range"]
    compact = read(cast, url)[0]
    api = cast.api(cast.client.employee)
    indented = api.get(url, HTTP_ACCEPT="application/json; indent=2")
    assert indented.content.startswith(b"[\n  {") and compact.content.startswith(b"[{")
    assert indented.json() == compact.json()
    assert indented["Content-Type"] == compact["Content-Type"] == "application/json; charset=utf-8"
    bad = f"/api/contracts/{contract.pk}/service-days?from=2026-01-19"
    for _ in range(2):
        res = api.get(bad)
        assert res.status_code == 400
        assert res.json()["message"] == ["to must be a valid ISO 8601 date string"]


def test_bulk_deletes_of_service_days_stay_one_statement(cast: Any) -> None:
    """(The admin deletes no service day: servicedays/admin.py.)"""
    contract = make_contract(cast)
    make_day(contract, date(2026, 1, 19))
    make_day(contract, date(2026, 1, 21))
    # no delete signal on service days: a queryset delete is one DELETE, not a fetch per row
    # (the one SELECT reads the contract's parties, whose cached reads it makes stale)
    url = urls(contract)["range"]
    assert len(read(cast, url)[0].json()) == 2
    with CaptureQueriesContext(connection) as queries:
        ServiceDay.objects.filter(contract=contract).delete()
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == ["SELECT", "DELETE"]
    assert "serviceday" not in queries.captured_queries[0]["sql"].split("FROM")[1].split()[0]
    assert read(cast, url)[0].json() == []


def test_a_cache_outage_computes_every_read(cast: Any, monkeypatch: Any) -> None:
    contract = make_contract(cast)
    make_day(contract, date(2026, 1, 19), expected_quantity=12)
    url = urls(contract)["range"]
    before = read(cast, url)[0].json()
    errors = lookups("error")

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    for name in ("get_many", "get", "set", "add"):
        monkeypatch.setattr(cache, name, unavailable)
    api = cast.api(cast.client.employee)
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            res = api.get(url)
        assert res.status_code == 200
        assert res.json() == before
        assert any("servicedays_serviceday" in q["sql"] for q in queries.captured_queries)
    assert lookups("error") - errors == 2
