"""ContractMonthTotal: per-contract monthly sums kept by PostgreSQL triggers (month_totals.py).

Every way of writing service days (model methods, bulk and queryset writes, raw SQL, the
services, the jobs, deletes through contracts) leaves the table equal to the sums recomputed
from the days; concurrent writers of one contract's month both count; ``manage.py
month_totals`` finds and repairs a table that drifted.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import psycopg
import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection, connections

from chefops import readcache
from contracts.models import Contract
from servicedays import jobs, month_totals
from servicedays.models import ContractMonthTotal, ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day, post_json

CONFIRMED = ServiceDayStatus.CONFIRMED
PENDING = ServiceDayStatus.PENDING


def differences() -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        return month_totals.differences(cursor)


def totals(contract: Contract) -> dict[str, tuple[int, ...]]:
    return {
        f"{row.month:%Y-%m}": (
            row.served,
            row.expected,
            row.deviation_served,
            row.deviation_expected,
        )
        for row in ContractMonthTotal.objects.filter(contract=contract)
        if (row.served, row.expected, row.deviation_served, row.deviation_expected) != (0, 0, 0, 0)
    }


def test_the_module_names_the_models_table_and_columns() -> None:
    """The trigger SQL names tables and columns as text (a migration runs it)."""
    assert ContractMonthTotal._meta.db_table == month_totals.TABLE
    assert ServiceDay._meta.db_table == month_totals.DAYS
    assert Contract._meta.db_table == month_totals.CONTRACTS
    fields = {f.column for f in ContractMonthTotal._meta.concrete_fields}
    assert fields == {"id", "contract_id", "month", *month_totals.COLUMNS}


@pytest.mark.postgres
@pytest.mark.django_db
def test_hand_computed_sums_of_a_month(cast: Any) -> None:
    contract = make_contract(cast)
    make_day(contract, date(2026, 3, 2), expected_quantity=20, served_quantity=21, status=CONFIRMED)
    make_day(contract, date(2026, 3, 3), expected_quantity=10, served_quantity=4)  # PENDING
    make_day(contract, date(2026, 3, 4), expected_quantity=0, served_quantity=5, status=CONFIRMED)
    make_day(contract, date(2026, 3, 5), expected_quantity=7)
    make_day(contract, date(2026, 3, 31))  # nothing set: counts for nothing
    make_day(contract, date(2026, 4, 1), expected_quantity=3, served_quantity=3, status=CONFIRMED)
    make_day(contract, date(2026, 5, 1))  # a month of unset days has no row
    # served: CONFIRMED days only (21 + 5); expected: every day (20 + 10 + 0 + 7);
    # deviation: the days with both above zero (the 2nd and the 3rd)
    assert totals(contract) == {"2026-03": (26, 37, 25, 30), "2026-04": (3, 3, 3, 3)}
    assert not ContractMonthTotal.objects.filter(contract=contract, month=date(2026, 5, 1))
    assert differences() == []


def _orm_writes(cast: Any) -> list[Callable[[], object]]:
    a = make_contract(cast)
    b = make_contract(cast, client_company=cast.other_client.company)
    day = make_day(a, date(2026, 3, 2), expected_quantity=20)
    other = make_day(b, date(2026, 3, 9), expected_quantity=8, served_quantity=8, status=CONFIRMED)

    def save_changed() -> None:
        day.served_quantity, day.status = 18, CONFIRMED
        day.save()

    def save_unchanged() -> None:
        day.save()

    def move_to_another_month() -> None:
        day.service_date = date(2026, 4, 30)
        day.save(update_fields=["service_date"])

    def move_to_another_contract() -> None:
        ServiceDay.objects.filter(pk=other.pk).update(contract=a, service_date=date(2026, 3, 20))

    def raw_insert_and_update() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO servicedays_serviceday (id, contract_id, service_date, "
                "expected_quantity, served_quantity, status, created_at, updated_at) "
                "VALUES (gen_random_uuid(), %s, %s, 5, NULL, 'PENDING', now(), now())",
                [b.pk, date(2026, 3, 11)],
            )
            cursor.execute(
                "UPDATE servicedays_serviceday SET served_quantity = 6, status = 'CONFIRMED' "
                "WHERE contract_id = %s AND service_date = %s",
                [b.pk, date(2026, 3, 11)],
            )

    return [
        lambda: ServiceDay.objects.bulk_create(
            ServiceDay(contract=a, service_date=date(2026, 3, d), expected_quantity=d)
            for d in range(10, 20)
        ),
        save_changed,
        save_unchanged,
        lambda: ServiceDay.objects.filter(contract=a, service_date__gte=date(2026, 3, 15)).update(
            served_quantity=30, status=CONFIRMED
        ),
        lambda: ServiceDay.objects.filter(contract=a, expected_quantity=12).update(
            expected_quantity=None
        ),
        move_to_another_month,
        move_to_another_contract,
        raw_insert_and_update,
        lambda: ServiceDay.objects.get(contract=a, service_date=date(2026, 3, 10)).delete(),
        lambda: ServiceDay.objects.filter(contract=a, service_date__lt=date(2026, 3, 17)).delete(),
        lambda: ServiceDay.objects.filter(pk__in=[]).update(expected_quantity=1),  # no rows
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_every_kind_of_write_keeps_the_table_equal_to_the_days(cast: Any) -> None:
    writes = _orm_writes(cast)
    for number, write in enumerate(writes):
        write()
        assert differences() == [], f"write {number}"
    assert ContractMonthTotal.objects.filter(served__gt=0).exists()  # the table was used


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_deleted_contract_takes_its_rows_with_it(cast: Any) -> None:
    keep = make_contract(cast, client_company=cast.other_client.company)
    make_day(keep, date(2026, 3, 2), expected_quantity=4)
    gone = make_contract(cast)
    make_day(gone, date(2026, 3, 2), expected_quantity=20, served_quantity=20, status=CONFIRMED)
    make_day(gone, date(2026, 2, 2), expected_quantity=20)
    gone_id = gone.pk
    gone.delete()  # the collector deletes the days first, then the contract
    assert not ContractMonthTotal.objects.filter(contract_id=gone_id).exists()
    assert totals(keep) == {"2026-03": (0, 4, 0, 0)}
    assert differences() == []
    cast.client.company.delete()  # companies cascade to their contracts and days
    assert differences() == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_services_and_jobs_keep_the_table_equal_to_the_days(cast: Any) -> None:
    contract = make_contract(cast, weekdays=[1, 2, 3, 4, 5], start_date=date(2026, 3, 1))
    with time_machine.travel(datetime(2026, 3, 2, 8, tzinfo=UTC), tick=False):
        jobs.service_days_generate_upcoming()
    days = list(ServiceDay.objects.filter(contract=contract).order_by("service_date"))
    assert len(days) >= 5 and differences() == []

    def confirm(user: Any, day: ServiceDay, action: str, body: dict[str, int]) -> None:
        res = post_json(cast.api(user), f"/api/service-days/{day.pk}/{action}", body)
        assert res.status_code == 201, res.content

    with time_machine.travel(datetime(2026, 3, 2, 9, tzinfo=UTC), tick=False):
        confirm(cast.client.employee, days[-1], "confirm-expected", {"expectedQuantity": 40})
        jobs.service_days_apply_fallback()  # the 2nd and 3rd are past their notice: minimum 10
    assert differences() == []
    with time_machine.travel(datetime(2026, 3, 3, 20, tzinfo=UTC), tick=False):
        confirm(cast.catering.employee, days[0], "confirm-served", {"servedQuantity": 12})
    assert differences() == []
    row = ContractMonthTotal.objects.get(contract=contract, month=date(2026, 3, 1))
    assert (row.served, row.expected) == (12, 40 + 10 + 10)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_command_finds_a_drifted_table_and_rebuilds_it(
    cast: Any, django_capture_on_commit_callbacks: Any
) -> None:
    contract = make_contract(cast)
    make_day(contract, date(2026, 3, 2), expected_quantity=20, served_quantity=21, status=CONFIRMED)
    out = StringIO()
    call_command("month_totals", stdout=out)
    assert "every row agrees" in out.getvalue()
    ContractMonthTotal.objects.filter(contract=contract).update(served=999)
    ContractMonthTotal.objects.create(contract=contract, month=date(2025, 1, 1), expected=5)
    out = StringIO()
    with pytest.raises(CommandError, match="2 rows disagree"):
        call_command("month_totals", stdout=out)
    assert "served 999 (days: 21)" in out.getvalue()
    assert "2025-01: served 0 (days: 0), expected 5 (days: 0)" in out.getvalue()
    out = StringIO()
    cache.set(readcache.ALL, "before-the-rebuild", timeout=None)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("month_totals", "--rebuild", stdout=out)
    assert "rebuilt, 1 (contract, month) rows" in out.getvalue()
    # figures cached from the drifted table are stale now
    assert cache.get(readcache.ALL) not in (None, "before-the-rebuild")
    assert differences() == [] and totals(contract) == {"2026-03": (21, 20, 21, 20)}


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_command_says_when_the_triggers_are_off(cast: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {month_totals.DAYS} DISABLE TRIGGER {month_totals.TABLE}_upd")
    with pytest.raises(CommandError, match="triggers are missing or disabled"):
        call_command("month_totals", stdout=StringIO())
    call_command("month_totals", "--rebuild", stdout=StringIO())  # reinstalls them
    with connection.cursor() as cursor:
        assert month_totals.installed(cursor)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_contracts_month_both_count(cast: Any) -> None:
    """The second writer's upsert waits on the first's row lock (seen in pg_stat_activity, not
    waited for by time) and adds to what the first committed: nothing lost."""
    contract = make_contract(cast)
    make_day(contract, date(2026, 3, 2), expected_quantity=1)
    dsn = {
        "dbname": connection.settings_dict["NAME"],
        "host": connection.settings_dict["HOST"] or None,
        "port": connection.settings_dict["PORT"] or None,
        "user": connection.settings_dict["USER"] or None,
        "password": connection.settings_dict["PASSWORD"] or None,
    }
    # Marked, to find the second writer's wait in pg_stat_activity: through PgBouncer its
    # client connection's backend pid is not the server's.
    marker = f"month-totals-writer-{uuid.uuid4().hex}"
    insert = (
        f"/* {marker} */ INSERT INTO servicedays_serviceday (id, contract_id, service_date, "
        "expected_quantity, status, created_at, updated_at) "
        "VALUES (gen_random_uuid(), %s, %s, %s, 'PENDING', now(), now())"
    )
    first = psycopg.connect(**dsn)
    second = psycopg.connect(**dsn, autocommit=True)
    errors: list[BaseException] = []
    try:
        first.execute(insert, [contract.pk, date(2026, 3, 3), 10])  # holds the row's lock

        def write() -> None:
            try:
                second.execute(insert, [contract.pk, date(2026, 3, 4), 100])
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        with psycopg.connect(**dsn, autocommit=True) as watcher:
            deadline = datetime.now(UTC) + timedelta(seconds=60)
            while not watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND position(%s in query) > 0 AND pid <> pg_backend_pid()",
                [marker],
            ).fetchone():
                assert thread.is_alive() and datetime.now(UTC) < deadline, errors
        first.commit()
        thread.join(60)
        assert not thread.is_alive() and errors == []
    finally:
        first.close()
        second.close()
        connections.close_all()
    row = ContractMonthTotal.objects.get(contract=contract, month=date(2026, 3, 1))
    assert row.expected == 111
    assert differences() == []


@pytest.mark.skipif(settings.IS_POSTGRES, reason="on PostgreSQL the command works (above)")
@pytest.mark.django_db
def test_on_sqlite_the_command_says_it_needs_postgresql() -> None:
    with pytest.raises(CommandError, match="needs PostgreSQL: on SQLite the finance metrics"):
        call_command("month_totals", stdout=StringIO())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_restore_table_of_the_days_adds_them_to_the_sums(cast: Any, tmp_path: Any) -> None:
    """`restore_table` inserts the missing days with one INSERT … SELECT: the triggers add them
    back to their months, and the table agrees with the days again."""
    contract = make_contract(cast)
    for day in (2, 3, 4):
        make_day(
            contract, date(2026, 3, day), expected_quantity=10, served_quantity=9, status=CONFIRMED
        )
    before = totals(contract)
    out = StringIO()
    call_command("backup", "--dir", str(tmp_path), stdout=out)
    dump = out.getvalue().split()[1]
    ServiceDay.objects.filter(contract=contract, service_date__gte=date(2026, 3, 3)).delete()
    assert totals(contract) == {"2026-03": (9, 10, 9, 10)}
    out = StringIO()
    call_command("restore_table", dump, "--table", "servicedays_serviceday", stdout=out)
    assert out.getvalue().startswith("added 2 row(s)")
    assert totals(contract) == before == {"2026-03": (27, 30, 27, 30)}
    assert differences() == []
