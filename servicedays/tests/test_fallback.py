"""The hourly expected-quantity fallback (reference §4.5, §10.7)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections, transaction

from contracts.models import ContractStatus
from outbox.models import OutboxEvent
from servicedays import jobs
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 20, 10, 30, tzinfo=UTC)
TODAY = NOW.date()


def run(now: datetime = NOW, **kwargs: Any) -> jobs.FallbackSummary:
    with time_machine.travel(now, tick=False):
        return jobs.service_days_apply_fallback(**kwargs)


def test_applies_the_contract_minimum_to_a_past_unconfirmed_day(cast: Any) -> None:
    contract = make_contract(cast, min_daily_quantity=15, notice_period_hours=24)
    day = make_day(contract, TODAY - timedelta(days=1))
    summary = run()
    assert (summary.applied, summary.contracts) == (1, 1)
    day.refresh_from_db()
    assert day.expected_quantity == 15
    assert day.expected_confirmed_at == NOW and day.updated_at == NOW
    assert day.status == ServiceDayStatus.PENDING
    event = OutboxEvent.objects.get(event_type="servicedays.fallback_applied")
    assert (event.aggregate_type, event.aggregate_id) == ("Contract", str(contract.pk))
    assert event.payload == {
        "contractId": str(contract.pk),
        "cateringCompanyId": str(cast.catering.company.pk),
        "clientCompanyId": str(cast.client.company.pk),
        "appliedQuantity": 15,
        "appliedAt": "2026-01-20T10:30:00.000Z",
        "serviceDays": [{"serviceDayId": str(day.pk), "serviceDate": "2026-01-19"}],
    }


def test_each_contract_gets_its_own_minimum_and_one_event(cast: Any) -> None:
    first = make_contract(cast, min_daily_quantity=15)
    second = make_contract(cast, client_company=cast.other_client.company, min_daily_quantity=25)
    for offset in (1, 2):
        make_day(first, TODAY - timedelta(days=offset))
    make_day(second, TODAY - timedelta(days=1))
    summary = run()
    assert (summary.applied, summary.contracts) == (3, 2)
    quantities = ServiceDay.objects.values_list("expected_quantity", flat=True)
    assert sorted(q or 0 for q in quantities) == [15, 15, 25]
    events = OutboxEvent.objects.filter(event_type="servicedays.fallback_applied")
    assert events.count() == 2
    first_event = events.get(aggregate_id=str(first.pk))
    assert [d["serviceDate"] for d in first_event.payload["serviceDays"]] == [
        "2026-01-18",
        "2026-01-19",
    ]


def test_exclusions(cast: Any) -> None:
    contract = make_contract(cast, min_daily_quantity=15)
    yesterday = TODAY - timedelta(days=1)
    with_expected = make_day(
        contract, yesterday, expected_quantity=40, expected_confirmed_at=NOW - timedelta(days=3)
    )
    confirmed = make_day(
        contract,
        yesterday - timedelta(days=1),
        status=ServiceDayStatus.CONFIRMED,
        served_quantity=0,
    )
    ahead = make_day(contract, TODAY + timedelta(days=7))
    paused = make_contract(
        cast, client_company=cast.other_client.company, status=ContractStatus.PAUSED
    )
    terminated = make_contract(
        cast, catering_company=cast.other_catering.company, status=ContractStatus.TERMINATED
    )
    paused_day = make_day(paused, yesterday)
    terminated_day = make_day(terminated, yesterday)
    summary = run()
    assert summary.applied == 0
    assert not OutboxEvent.objects.exists()
    for day, quantity in (
        (with_expected, 40),
        (confirmed, None),
        (ahead, None),
        (paused_day, None),
        (terminated_day, None),
    ):
        day.refresh_from_db()
        assert day.expected_quantity == quantity


def test_idempotent(cast: Any) -> None:
    contract = make_contract(cast)
    make_day(contract, TODAY - timedelta(days=1))
    assert run().applied == 1
    later = run(NOW + timedelta(hours=1))
    assert later.applied == 0
    assert OutboxEvent.objects.filter(event_type="servicedays.fallback_applied").count() == 1
    assert ServiceDay.objects.get().expected_confirmed_at == NOW


@pytest.mark.parametrize(
    ("now", "applied"),
    [
        (datetime(2026, 1, 23, 23, 59, 59, tzinfo=UTC), 0),  # one second before the deadline
        (datetime(2026, 1, 24, tzinfo=UTC), 1),  # exactly at the deadline (<= now)
        (datetime(2026, 1, 24, 0, 0, 1, tzinfo=UTC), 1),
    ],
)
def test_deadline_boundary(cast: Any, now: datetime, applied: int) -> None:
    contract = make_contract(cast, notice_period_hours=24)
    make_day(contract, date(2026, 1, 25))
    assert run(now).applied == applied


def test_notice_periods_are_per_contract(cast: Any) -> None:
    """At 17:29 UTC, a 48 h contract's day two days ahead is due; a 24 h one's is not."""
    now = datetime(2026, 11, 28, 17, 29, tzinfo=UTC)
    long_notice = make_contract(cast, notice_period_hours=48, min_daily_quantity=50)
    short_notice = make_contract(cast, client_company=cast.other_client.company)
    twelve = make_contract(
        cast, catering_company=cast.other_catering.company, notice_period_hours=12
    )
    due = make_day(long_notice, date(2026, 11, 30))
    not_due = make_day(long_notice, date(2026, 12, 1))
    short_not_due = make_day(short_notice, date(2026, 11, 30))
    twelve_due = make_day(twelve, date(2026, 11, 29))  # deadline 28th 12:00
    assert run(now).applied == 2
    for day, quantity in ((due, 50), (not_due, None), (short_not_due, None), (twelve_due, 10)):
        day.refresh_from_db()
        assert day.expected_quantity == quantity


def test_dry_run_changes_nothing(cast: Any) -> None:
    contract = make_contract(cast)
    day = make_day(contract, TODAY - timedelta(days=1))
    summary = run(dry_run=True)
    assert summary.applied == 1
    assert summary.line().startswith("apply_fallback: would apply the contract minimum to 1 ")
    day.refresh_from_db()
    assert day.expected_quantity is None
    assert not OutboxEvent.objects.exists()


def test_command_summary_and_log(cast: Any, caplog: pytest.LogCaptureFixture) -> None:
    contract = make_contract(cast)
    make_day(contract, TODAY - timedelta(days=1))
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("apply_fallback", "--dry-run", stdout=out)
        assert "2026-01-19 contract" in out.getvalue()
        assert ServiceDay.objects.get().expected_quantity is None
        with caplog.at_level(logging.INFO, logger="servicedays.jobs"):
            call_command("apply_fallback", stdout=out)
    assert "apply_fallback: applied the contract minimum to 1 service days of 1 contracts" in (
        out.getvalue()
    )
    assert any(m.startswith("apply_fallback: applied") for m in caplog.messages)
    from servicedays.tasks import apply_fallback

    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert apply_fallback.delay().get().startswith("apply_fallback: applied the contract")


@pytest.mark.postgres
def test_skips_while_another_run_holds_the_lock(cast: Any) -> None:
    make_day(make_contract(cast), TODAY - timedelta(days=1))
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [jobs.FALLBACK_LOCK_ID])
                locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=60)
        summary = run()
        assert not summary.lock_acquired
        assert summary.line() == "apply_fallback: skipped, another run holds the lock"
    finally:
        release.set()
        holder.join(timeout=60)
    assert run().applied == 1
