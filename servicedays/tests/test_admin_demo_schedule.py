"""Admin pages, the demo seeder, the beat schedule entries and the benchmark loader's guard."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from chefops.schedule import SCHEDULE
from chefops.testing.factories import CateringFactory, ClientFactory, ContractFactory, UserFactory
from contracts.models import ContractStatus
from servicedays.demo import seed
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_day

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Any) -> Any:
    staff = UserFactory.create(company=None, is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def test_admin_changelist_filters_and_search(staff_client: Any, contract: Any) -> None:
    day = make_day(contract, date(2026, 1, 19))
    make_day(contract, date(2026, 1, 20), status=ServiceDayStatus.CONFIRMED, served_quantity=3)
    url = "/admin/servicedays/serviceday/"
    res = staff_client.get(url)
    assert res.status_code == 200
    assert b"contract id" in res.content
    assert len(staff_client.get(url + "?status__exact=CONFIRMED").context["cl"].result_list) == 1
    assert len(staff_client.get(url + f"?contract={contract.pk}").context["cl"].result_list) == 2
    assert len(staff_client.get(url + "?contract=nonsense").context["cl"].result_list) == 0
    assert len(staff_client.get(url + "?q=Delicias").context["cl"].result_list) == 2
    assert len(staff_client.get(url + "?q=Nobody").context["cl"].result_list) == 0
    assert len(staff_client.get(url + f"?q={contract.pk}").context["cl"].result_list) == 2
    assert len(staff_client.get(url + f"?q={day.pk}").context["cl"].result_list) == 1
    assert staff_client.get(url + "?service_date__year=2026").status_code == 200
    change = staff_client.get(f"{url}{day.pk}/change/")
    assert change.status_code == 200
    # quantities are confirmations (servicedays/tests/test_admin.py); the rest is read-only
    readonly = change.context["adminform"].readonly_fields
    for name in ("expected_confirmed_at", "served_confirmed_at", "status", "service_date"):
        assert name in readonly


def test_demo_seed_keeps_to_the_contracts_it_finds(cast: Any) -> None:
    """The seeder reads each demo contract's own terms: here they started ten days ago."""
    # the cast already holds delicias, sabores, techcorp and startup
    companies = {
        "delicias": cast.catering.company,
        "sabores": cast.other_catering.company,
        "techcorp": cast.client.company,
        "startup": cast.other_client.company,
        "chef": CateringFactory.create(email="chef@example.com"),
        "finanzas": ClientFactory.create(email="finanzas@example.com"),
        "consultora": ClientFactory.create(email="consultora@example.com"),
    }
    specs = [
        ("delicias", "techcorp", 20, 80, 24, [1, 3, 5], ContractStatus.ACTIVE),
        ("delicias", "finanzas", 50, 150, 48, [1, 2, 3, 4, 5], ContractStatus.ACTIVE),
        ("sabores", "startup", 10, 40, 12, [2, 4], ContractStatus.ACTIVE),
        ("chef", "consultora", 30, 30, 24, [1, 2, 3, 4, 5], ContractStatus.ACTIVE),
        ("sabores", "techcorp", 15, 60, 24, [1, 3, 5], ContractStatus.PAUSED),
    ]
    today = date(2026, 11, 26)  # a Thursday
    start = date(2026, 11, 16)
    contracts = [
        ContractFactory.create(
            catering_company=companies[cat],
            client_company=companies[cli],
            start_date=start,
            min_daily_quantity=lo,
            max_daily_quantity=hi,
            notice_period_hours=notice,
            weekdays=days,
            status=status,
        )
        for cat, cli, lo, hi, notice, days, status in specs
    ]
    summary = seed(today=today)
    # From the start (Mon 16) to today + 14 (Thu Dec 10): 11 + 19 + 8 + 19 days.
    assert summary.startswith("service days: 57 for 5 demo contracts, 2026-11-16..2026-12-10")
    rows = list(ServiceDay.objects.select_related("contract").order_by("service_date"))
    assert len(rows) == 57
    assert not ServiceDay.objects.filter(contract=contracts[4]).exists()  # paused since Oct 12
    for row in rows:
        contract = row.contract
        assert row.service_date >= start
        assert row.service_date.isoweekday() in set(
            contract.weekdays.values_list("day_of_week", flat=True)
        )
        if row.service_date < today:
            assert row.status == ServiceDayStatus.CONFIRMED
            assert row.expected_confirmed_at is not None and row.served_confirmed_at is not None
            assert row.created_at >= datetime.combine(start, datetime.min.time(), tzinfo=UTC)
        else:
            assert row.status == ServiceDayStatus.PENDING
        if row.expected_quantity is not None:
            assert (
                contract.min_daily_quantity <= row.expected_quantity <= contract.max_daily_quantity
            )
    first = sorted(
        (r.contract_id, r.service_date, r.expected_quantity, r.served_quantity) for r in rows
    )
    seed(today=today)  # wipes and reloads the same values
    again = ServiceDay.objects.all()
    assert (
        sorted(
            (r.contract_id, r.service_date, r.expected_quantity, r.served_quantity) for r in again
        )
        == first
    )


def test_demo_seed_without_demo_contracts() -> None:
    assert seed(today=date(2026, 11, 26)) == "service days: 0 for 0 demo contracts"


def test_schedule_runs_generation_daily_and_fallback_hourly() -> None:
    jobs = {job.task: job for job in SCHEDULE}
    assert jobs["servicedays.generate_upcoming"].crontab == "0 0 * * *"
    assert jobs["servicedays.apply_fallback"].crontab == "0 * * * *"
    assert "outbox.dispatch" in jobs


def test_bench_data_refuses_a_non_bench_database() -> None:
    with pytest.raises(CommandError, match="needs a PostgreSQL database whose name contains"):
        call_command("bench_data", "--companies", "4", "--contracts", "2", "--service-days", "10")
