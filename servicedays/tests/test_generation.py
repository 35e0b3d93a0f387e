"""Generation: the on-demand API (reference S2, §10.8) and the daily job (§4.7)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections, transaction

from contracts.models import Contract, ContractStatus
from servicedays import jobs
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day, post_json

pytestmark = pytest.mark.django_db


def generate(cast: Any, contract: Contract, from_date: str, to_date: str, user: Any = None) -> Any:
    if user is None:
        tenants = (cast.client, cast.other_client)
        user = next(t.manager for t in tenants if t.company.pk == contract.client_company_id)
    client = cast.api(user)
    return post_json(
        client,
        f"/api/contracts/{contract.pk}/service-days/generate",
        {"fromDate": from_date, "toDate": to_date},
    )


def dates_of(contract: Contract) -> list[str]:
    return [
        d.isoformat()
        for d in ServiceDay.objects.filter(contract=contract).values_list("service_date", flat=True)
    ]


# --- API --------------------------------------------------------------------------------------


def test_generates_the_contract_weekdays_and_returns_the_new_rows(cast: Any) -> None:
    contract = make_contract(cast, weekdays=[1, 3, 5])
    res = generate(cast, contract, "2025-01-20", "2025-01-26")
    assert res.status_code == 201
    body = res.json()
    assert [d["serviceDate"] for d in body] == ["2025-01-20", "2025-01-22", "2025-01-24"]
    first = body[0]
    assert set(first) == {
        "id",
        "contractId",
        "serviceDate",
        "expectedQuantity",
        "servedQuantity",
        "expectedConfirmedAt",
        "servedConfirmedAt",
        "status",
        "createdAt",
        "updatedAt",
    }
    assert first["contractId"] == str(contract.pk)
    assert first["status"] == "PENDING"
    assert first["expectedQuantity"] is None and first["servedQuantity"] is None
    assert first["expectedConfirmedAt"] is None and first["servedConfirmedAt"] is None
    assert first["createdAt"].endswith("Z") and len(first["createdAt"]) == 24


def test_generation_is_idempotent_and_overlaps_insert_only_the_missing(cast: Any) -> None:
    contract = make_contract(cast, weekdays=[1, 2, 3, 4, 5])
    assert len(generate(cast, contract, "2025-01-20", "2025-01-26").json()) == 5
    again = generate(cast, contract, "2025-01-20", "2025-01-26")
    assert again.status_code == 201 and again.json() == []
    assert ServiceDay.objects.filter(contract=contract).count() == 5

    other = make_contract(cast, client_company=cast.other_client.company, weekdays=[1, 2, 3, 4, 5])
    assert len(generate(cast, other, "2025-01-20", "2025-01-22").json()) == 3
    second = generate(cast, other, "2025-01-21", "2025-01-24").json()
    assert [d["serviceDate"] for d in second] == ["2025-01-23", "2025-01-24"]
    assert dates_of(other) == ["2025-01-20", "2025-01-21", "2025-01-22", "2025-01-23", "2025-01-24"]


def test_an_eight_day_window_and_special_weekday_sets(cast: Any) -> None:
    weekdays = make_contract(cast, weekdays=[1, 2, 3, 4, 5])
    assert len(generate(cast, weekdays, "2025-01-22", "2025-01-29").json()) == 6
    weekend = make_contract(cast, client_company=cast.other_client.company, weekdays=[6, 7])
    res = generate(cast, weekend, "2025-01-20", "2025-01-26").json()
    assert [d["serviceDate"] for d in res] == ["2025-01-25", "2025-01-26"]
    single = generate(cast, weekend, "2025-02-01", "2025-02-01").json()
    assert [d["serviceDate"] for d in single] == ["2025-02-01"]
    assert generate(cast, weekend, "2025-02-10", "2025-02-01").json() == []  # from > to


def test_regeneration_keeps_confirmed_values(cast: Any) -> None:
    contract = make_contract(cast, weekdays=[1])
    confirmed_at = datetime(2025, 1, 18, 10, tzinfo=UTC)
    make_day(contract, date(2025, 1, 20), expected_quantity=50, expected_confirmed_at=confirmed_at)
    assert generate(cast, contract, "2025-01-20", "2025-01-27").json()[0]["serviceDate"] == (
        "2025-01-27"
    )
    kept = ServiceDay.objects.get(contract=contract, service_date=date(2025, 1, 20))
    assert kept.expected_quantity == 50 and kept.expected_confirmed_at == confirmed_at


def test_only_dates_inside_the_contract_period(cast: Any) -> None:
    contract = make_contract(
        cast,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        start_date=date(2025, 1, 22),
        end_date=date(2025, 1, 24),
    )
    res = generate(cast, contract, "2025-01-01", "2025-01-31").json()
    assert [d["serviceDate"] for d in res] == ["2025-01-22", "2025-01-23", "2025-01-24"]


def test_iso_instants_are_reduced_to_their_utc_date(cast: Any) -> None:
    contract = make_contract(cast, weekdays=[2])
    res = generate(cast, contract, "2025-01-20T23:30:00-05:00", "2025-01-21T00:00:00.000Z")
    assert [d["serviceDate"] for d in res.json()] == ["2025-01-21"]


def test_range_limit_of_366_days(cast: Any) -> None:
    contract = make_contract(cast, weekdays=[1])
    ok = generate(cast, contract, "2024-01-01", "2024-12-31")  # 366 days (leap year)
    assert ok.status_code == 201 and len(ok.json()) == 53
    too_long = generate(cast, contract, "2025-01-01", "2026-01-02")
    assert too_long.status_code == 400
    assert too_long.json()["message"] == ["The range fromDate..toDate must not exceed 366 days"]


def test_body_validation(cast: Any, contract: Contract) -> None:
    url = f"/api/contracts/{contract.pk}/service-days/generate"
    api = cast.api(cast.client.admin)
    res = post_json(api, url, {"extra": 1})
    assert res.status_code == 400
    assert res.json()["message"] == [
        "property extra should not exist",
        "fromDate must be a valid ISO 8601 date string",
        "toDate must be a valid ISO 8601 date string",
    ]
    res = post_json(api, url, {"fromDate": "20-01-2025", "toDate": 20250120})
    assert res.json()["message"] == [
        "fromDate must be a valid ISO 8601 date string",
        "toDate must be a valid ISO 8601 date string",
    ]


@pytest.mark.parametrize("tenant", ["catering", "client"])
@pytest.mark.parametrize("role", ["ADMIN", "MANAGER"])
def test_managers_and_admins_of_either_party_may_generate(
    cast: Any, contract: Contract, tenant: str, role: str
) -> None:
    user = getattr(cast, tenant).user(role)
    assert generate(cast, contract, "2025-01-20", "2025-01-26", user).status_code == 201


@pytest.mark.parametrize("tenant", ["catering", "client"])
def test_employees_may_not_generate(cast: Any, contract: Contract, tenant: str) -> None:
    res = generate(cast, contract, "2025-01-20", "2025-01-26", getattr(cast, tenant).employee)
    assert res.status_code == 403
    assert res.json()["message"] == "This action requires the ADMIN or MANAGER role"
    assert not ServiceDay.objects.exists()


@pytest.mark.parametrize("tenant", ["other_catering", "other_client"])
def test_it_validates_ownership(cast: Any, contract: Contract, tenant: str) -> None:
    res = generate(cast, contract, "2025-01-20", "2025-01-26", getattr(cast, tenant).admin)
    assert res.status_code == 403
    assert res.json() == {
        "message": "Not authorized to view this contract",
        "error": "Forbidden",
        "statusCode": 403,
    }
    assert not ServiceDay.objects.exists()


def test_unknown_contract_bad_id_and_no_token(cast: Any) -> None:
    api = cast.api(cast.client.admin)
    unknown = "00000000-0000-0000-0000-000000000000"
    res = post_json(
        api,
        f"/api/contracts/{unknown}/service-days/generate",
        {"fromDate": "2025-01-20", "toDate": "2025-01-26"},
    )
    assert res.status_code == 404
    assert res.json()["message"] == f"Contract #{unknown} not found"
    res = post_json(api, "/api/contracts/nope/service-days/generate", {})
    assert res.status_code == 400
    assert res.json()["message"] == "Validation failed (uuid is expected)"
    res = post_json(cast.api(), f"/api/contracts/{unknown}/service-days/generate", {})
    assert res.status_code == 401


@pytest.mark.parametrize("status", [ContractStatus.PAUSED, ContractStatus.TERMINATED])
def test_only_active_contracts(cast: Any, status: str) -> None:
    contract = make_contract(cast, status=status)
    res = generate(cast, contract, "2025-01-20", "2025-01-26")
    assert res.status_code == 400
    assert res.json()["message"] == "Can only generate service days for ACTIVE contracts"


# --- Daily job --------------------------------------------------------------------------------


@pytest.fixture(params=["UTC", "America/Argentina/Buenos_Aires", "Asia/Tokyo"])
def process_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the process time zone set (the original shifted weekdays west of UTC)."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


def test_job_and_api_give_the_same_weekdays_in_any_process_time_zone(
    cast: Any, process_tz: str
) -> None:
    monday_only = make_contract(cast, weekdays=[1])
    weekend = make_contract(cast, client_company=cast.other_client.company, weekdays=[6, 7])
    # Sunday 23:30 UTC: already Monday in Tokyo, still Sunday evening in Buenos Aires. A plain
    # timestamp (not an aware datetime) keeps time-machine from resetting the process TZ.
    instant = datetime(2025, 1, 19, 23, 30, tzinfo=UTC).timestamp()
    with time_machine.travel(instant, tick=False):
        local_hour = time.localtime(time.time()).tm_hour
        assert (local_hour == 23) is (process_tz == "UTC")  # the fixture really moved local time
        summary = jobs.service_days_generate_upcoming()
    assert (summary.from_date, summary.to_date) == (date(2025, 1, 19), date(2025, 1, 26))
    assert dates_of(monday_only) == ["2025-01-20"]
    assert dates_of(weekend) == ["2025-01-19", "2025-01-25", "2025-01-26"]
    res = generate(cast, monday_only, "2025-01-27", "2025-02-09")
    assert [d["serviceDate"] for d in res.json()] == ["2025-01-27", "2025-02-03"]


def test_job_covers_active_contracts_inside_their_period(cast: Any) -> None:
    active = make_contract(cast, weekdays=[1, 2, 3, 4, 5])
    ending = make_contract(
        cast,
        client_company=cast.other_client.company,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        end_date=date(2025, 1, 22),
    )
    starting = make_contract(
        cast,
        catering_company=cast.other_catering.company,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        start_date=date(2025, 1, 28),
    )
    paused = make_contract(
        cast,
        catering_company=cast.other_catering.company,
        client_company=cast.other_client.company,
        status=ContractStatus.PAUSED,
    )
    with time_machine.travel(datetime(2025, 1, 22, 0, 0, 5, tzinfo=UTC), tick=False):
        summary = jobs.service_days_generate_upcoming()
        assert summary.lock_acquired
        assert summary.active_contracts == 3
        # Wed 22 .. Wed 29: 6 weekdays + 1 (22 only) + 2 (28, 29) = 9
        assert summary.inserted == 9
        assert dates_of(active) == [
            "2025-01-22", "2025-01-23", "2025-01-24", "2025-01-27", "2025-01-28", "2025-01-29",
        ]  # fmt: skip
        assert dates_of(ending) == ["2025-01-22"]
        assert dates_of(starting) == ["2025-01-28", "2025-01-29"]
        assert dates_of(paused) == []
        created = ServiceDay.objects.get(contract=active, service_date=date(2025, 1, 22))
        assert created.status == ServiceDayStatus.PENDING
        assert created.created_at == datetime(2025, 1, 22, 0, 0, 5, tzinfo=UTC)
        again = jobs.service_days_generate_upcoming()
        assert again.inserted == 0
    assert ServiceDay.objects.count() == 9


def test_the_per_contract_entry_point_is_the_daily_job_for_those_contracts(cast: Any) -> None:
    active = make_contract(cast, weekdays=[1, 2, 3, 4, 5])
    ending = make_contract(
        cast,
        client_company=cast.other_client.company,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        end_date=date(2025, 1, 22),
    )
    starting = make_contract(
        cast,
        catering_company=cast.other_catering.company,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        start_date=date(2025, 1, 28),
    )
    paused = make_contract(
        cast,
        catering_company=cast.other_catering.company,
        client_company=cast.other_client.company,
        status=ContractStatus.PAUSED,
    )
    untouched = make_contract(
        cast,
        catering_company=cast.other_catering.company,
        client_company=cast.other_client.company,
    )
    chosen = [active.pk, ending.pk, starting.pk, paused.pk]
    with time_machine.travel(datetime(2025, 1, 22, 0, 0, 5, tzinfo=UTC), tick=False):
        assert jobs.service_days_generate_for_contracts(chosen) == 9
        assert dates_of(active) == [
            "2025-01-22", "2025-01-23", "2025-01-24", "2025-01-27", "2025-01-28", "2025-01-29",
        ]  # fmt: skip
        assert dates_of(ending) == ["2025-01-22"]
        assert dates_of(starting) == ["2025-01-28", "2025-01-29"]
        assert dates_of(paused) == [] and dates_of(untouched) == []
        assert jobs.service_days_generate_for_contracts(chosen) == 0
        assert jobs.service_days_generate_for_contracts([]) == 0
        # The daily job then adds only the contract it was not asked for.
        assert jobs.service_days_generate_upcoming().inserted == 4
        assert dates_of(untouched) == ["2025-01-22", "2025-01-24", "2025-01-27", "2025-01-29"]
        # A longer window, as the demo seed asks for.
        assert jobs.service_days_generate_for_contracts([active.pk], days=14) == 5
        assert dates_of(active)[-1] == "2025-02-05"

        from servicedays.tasks import generate_for_contract

        line = generate_for_contract.delay(str(starting.pk)).get()
        assert line == f"generate_for_contract {starting.pk}: 0 service days inserted"


@pytest.mark.postgres
def test_the_per_contract_entry_point_does_not_skip_for_the_daily_jobs_lock(cast: Any) -> None:
    """A contract created while the daily job runs still gets its days: it takes no lock."""
    contract = make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [jobs.GENERATE_LOCK_ID])
                locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=60)
        assert jobs.service_days_generate_for_contracts([contract.pk]) == 8
    finally:
        release.set()
        holder.join(timeout=60)


def test_job_window_length_and_summary_line(cast: Any, caplog: pytest.LogCaptureFixture) -> None:
    make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    with (
        time_machine.travel(datetime(2025, 3, 1, 12, tzinfo=UTC), tick=False),
        caplog.at_level(logging.INFO, logger="servicedays.jobs"),
    ):
        summary = jobs.service_days_generate_upcoming(days=2)
    assert summary.inserted == 3
    line = summary.line()
    assert line.startswith(
        "generate_service_days: 1 active contracts, 3 service days inserted, "
        "window 2025-03-01..2025-03-03, "
    )
    assert line.endswith(" ms")
    assert line in caplog.messages


def test_management_command_and_task(cast: Any) -> None:
    make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    out = StringIO()
    with time_machine.travel(datetime(2025, 3, 1, 12, tzinfo=UTC), tick=False):
        call_command("generate_service_days", "--days", "1", stdout=out)
        assert "2 service days inserted" in out.getvalue()
        from servicedays.tasks import generate_upcoming

        assert "6 service days inserted" in generate_upcoming.delay().get()
        assert ServiceDay.objects.count() == 8  # today .. today+7
    with pytest.raises(Exception, match="--days must be between 0 and 365"):
        call_command("generate_service_days", "--days", "400")


@pytest.mark.postgres
def test_concurrent_runs_skip_while_another_holds_the_lock(cast: Any) -> None:
    make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [jobs.GENERATE_LOCK_ID])
                locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=60)
        summary = jobs.service_days_generate_upcoming()
        assert not summary.lock_acquired
        assert summary.line() == "generate_service_days: skipped, another run holds the lock"
        assert ServiceDay.objects.count() == 0
    finally:
        release.set()
        holder.join(timeout=60)
    assert jobs.service_days_generate_upcoming().inserted == 8


@pytest.mark.postgres
def test_generated_ids_are_time_ordered_uuids(cast: Any) -> None:
    """Version 7 (48-bit Unix ms first): the primary key index takes a run's rows on a few
    pages instead of one random page each (docs/benchmarks.md, "cost as data grows")."""
    contract = make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    before_ms = int(time.time() * 1000)
    jobs.service_days_generate_for_contracts([contract.pk], days=7)
    after_ms = int(time.time() * 1000)
    ids = list(ServiceDay.objects.filter(contract=contract).values_list("id", flat=True))
    assert len(ids) == 8
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}
    assert len(set(ids)) == 8
    # The database's clock may differ a little from this process's; a minute is plenty.
    assert all(before_ms - 60_000 <= i.int >> 80 <= after_ms + 60_000 for i in ids)
