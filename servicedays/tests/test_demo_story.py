"""The demo tells a story on any date (issue #14): servicedays.demo with contracts.demo.

The plan of a day is checked on every seed day of a year without a database; the seeded rows
and what the API shows for them on the dates where a calendar-bound demo fails: the 1st (on
a Sunday and on a Monday), the 15th, the last day of a month (and of a leap February), the
turn of the year, a Monday and a Sunday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from chefops.testing.cast import session_access_token
from companies.models import Company, CompanyType, Role, User
from contracts import demo as contract_demo
from contracts.models import Contract, ContractStatus
from servicedays import demo, jobs, rules
from servicedays.models import ServiceDay, ServiceDayStatus

SPECS = contract_demo.DEMO_CONTRACTS
ACTIVE = ContractStatus.ACTIVE


def seed_days() -> list[date]:
    """January to July (every weekday as the 1st, months of 28, 30 and 31 days), the turn of
    the year and a leap day."""
    first = date(2026, 1, 1)
    extra = [date(2025, 12, 31), date(2026, 12, 31), date(2028, 2, 29), date(2028, 3, 1)]
    return [first + timedelta(days=n) for n in range(212)] + extra


def upcoming_dates(terms: demo.Terms, today: date) -> list[date]:
    """What the daily job's code generates for the seed (today .. today + 14)."""
    return rules.dates_on_weekdays(
        today,
        today + timedelta(days=demo.UPCOMING_DAYS),
        terms.weekdays,
        start_date=terms.start_date,
        end_date=terms.end_date,
    )


# --- The plan, on every day of a year ---------------------------------------------------------


def test_the_plan_keeps_the_rules_on_every_seed_day() -> None:
    for today in seed_days():
        now = rules.utc_midnight(today)
        prev_first, _ = rules.previous_month_window(today)
        for index, spec in enumerate(SPECS):
            terms = demo.spec_terms(spec, today)
            # Started months ago (before the month before last): the whole previous month
            # lies inside the contract.
            assert terms.start_date < contract_demo.month_start(today, 2), (today, index)
            history = demo.history_dates(terms, today)
            ahead = upcoming_dates(terms, today) if spec.status == ACTIVE else []
            assert history, (today, index)
            if terms.paused_since is not None:
                assert prev_first < terms.paused_since < today
                assert max(history) < terms.paused_since
            else:
                assert history[0] - prev_first < timedelta(days=7)
            plans = [demo.plan_day(index, terms, day, today) for day in history + ahead]
            for plan in plans:
                day = plan.service_date
                where = (today.isoformat(), index + 1, day.isoformat())
                assert terms.start_date <= day and day.isoweekday() in spec.days, where
                assert plan.created_at <= now and plan.updated_at <= now, where
                deadline = rules.notice_deadline(day, spec.notice_hours)
                if plan.expected_quantity is None:
                    # nothing the hourly fallback job would still do at the seed's midnight
                    assert deadline > now, where
                else:
                    assert spec.min_quantity <= plan.expected_quantity <= spec.max_quantity
                    assert plan.expected_confirmed_at is not None
                    assert plan.created_at <= plan.expected_confirmed_at <= now, where
                    if plan.fallback:  # the job's values: the minimum, once the deadline passed
                        assert plan.expected_quantity == spec.min_quantity, where
                        assert plan.expected_confirmed_at >= deadline, where
                    else:  # the client, inside the notice period
                        assert plan.expected_confirmed_at <= deadline, where
                if day < today:
                    assert plan.status == ServiceDayStatus.CONFIRMED, where
                    assert plan.served_quantity is not None and plan.served_confirmed_at
                    assert rules.utc_midnight(day) <= plan.served_confirmed_at <= now, where
                else:  # served only on or after the date; today's lunch is not served yet
                    assert plan.status == ServiceDayStatus.PENDING, where
                    assert plan.served_quantity is None and plan.served_confirmed_at is None
            if ahead:
                # The next service day always has its expected quantity: "next 7 days" > 0.
                assert plans[len(history)].expected_quantity is not None, (today, index)


def test_the_story_has_fallbacks_deviations_both_ways_and_confirmations_ahead() -> None:
    today = date(2026, 4, 15)
    plans = {
        index: [
            demo.plan_day(index, terms, day, today)
            for day in demo.history_dates(terms, today) + upcoming_dates(terms, today)
        ]
        for index, spec in enumerate(SPECS)
        for terms in [demo.spec_terms(spec, today)]
    }
    served = [
        (p.served_quantity, p.expected_quantity, p)
        for ps in plans.values()
        for p in ps
        if p.served_quantity is not None and p.expected_quantity is not None
    ]
    assert any(s > e for s, e, _ in served)
    assert any(s < e for s, e, _ in served)
    assert any(s == e for s, e, _ in served)
    assert any(p.fallback and p.service_date < today for _, _, p in served)
    ahead = [p for ps in plans.values() for p in ps if p.service_date > today]
    assert any(p.expected_quantity is not None and not p.fallback for p in ahead)
    assert any(p.expected_quantity is None for p in ahead)
    # Startup Hub gets fewer people than announced: more than 10 % below, every month.
    startup = [(s, e) for s, e, p in served if p.contract == 2]
    assert sum(s for s, _ in startup) < 0.9 * sum(e for _, e in startup)


def test_a_day_keeps_its_numbers_when_the_demo_is_reloaded_later() -> None:
    terms = demo.spec_terms(SPECS[1], date(2026, 4, 15))
    day = date(2026, 4, 7)
    first = demo.plan_day(1, terms, day, date(2026, 4, 15))
    later = demo.plan_day(1, demo.spec_terms(SPECS[1], date(2026, 4, 30)), day, date(2026, 4, 30))
    assert first == later


# --- The seeded database, through the API -----------------------------------------------------

DATES = {
    "1st-sunday": date(2026, 3, 1),
    "1st-monday": date(2026, 6, 1),
    "15th": date(2026, 4, 15),
    "last-day": date(2026, 4, 30),
    "last-day-leap-february": date(2028, 2, 29),
    "new-years-eve": date(2026, 12, 31),
    "new-years-day": date(2027, 1, 1),
    "monday": date(2026, 11, 23),
    "sunday": date(2026, 11, 29),
}


def seed(today: date) -> None:
    # The middle of a working day: the seed's story is that of the day's midnight.
    with time_machine.travel(datetime.combine(today, time(9, 30), tzinfo=UTC), tick=False):
        call_command("seed_demo", stdout=StringIO())


def snapshot() -> list[tuple[Any, ...]]:
    return sorted(
        ServiceDay.objects.values_list(
            "contract__catering_company__email",
            "contract__client_company__email",
            "contract__start_date",
            "contract__status",
            "service_date",
            "expected_quantity",
            "served_quantity",
            "expected_confirmed_at",
            "served_confirmed_at",
            "status",
            "created_at",
            "updated_at",
        )
    )


def admin_of(email: str) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    user = User.objects.get(email=email, role=Role.ADMIN)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session_access_token(user)}")
    return client


def has_service_day(contracts: list[Contract], first: date, last: date) -> bool:
    return any(
        rules.dates_on_weekdays(first, last, list(c.weekdays.values_list("day_of_week", flat=True)))
        for c in contracts
    )


@pytest.mark.django_db
@pytest.mark.parametrize("today", list(DATES.values()), ids=list(DATES))
def test_the_seeded_demo_is_believable_on_any_date(today: date) -> None:
    seed(today)
    now = rules.utc_midnight(today)
    first = snapshot()
    assert Company.objects.count() == 7 and Contract.objects.count() == 5

    # Every row keeps the rules: inside the contract, on its weekdays, quantities in range.
    days = list(
        ServiceDay.objects.select_related("contract").prefetch_related("contract__weekdays")
    )
    for row in days:
        contract = row.contract
        weekdays = {w.day_of_week for w in contract.weekdays.all()}
        assert contract.start_date <= row.service_date, row
        assert contract.end_date is None or row.service_date <= contract.end_date
        assert row.service_date.isoweekday() in weekdays, row
        if row.expected_quantity is not None:
            assert (
                contract.min_daily_quantity <= row.expected_quantity <= contract.max_daily_quantity
            )
        assert (row.status == ServiceDayStatus.CONFIRMED) == (row.served_quantity is not None)
        if row.served_quantity is not None:
            assert row.service_date < today
    paused = Contract.objects.get(status=ContractStatus.PAUSED)
    since = contract_demo.paused_since(SPECS[4], today)
    assert since is not None
    assert not ServiceDay.objects.filter(contract=paused, service_date__gte=since).exists()
    assert ServiceDay.objects.filter(contract=paused, service_date__lt=since).exists()

    # The jobs find nothing left to do at the seed day's midnight: the window ahead is the
    # daily job's, and every due day already has what the fallback would give it.
    with time_machine.travel(now, tick=False):
        assert jobs.service_days_apply_fallback(now=now, dry_run=True).applied == 0
        assert jobs.service_days_generate_upcoming(days=demo.UPCOMING_DAYS).inserted == 0

    with time_machine.travel(datetime.combine(today, time(9, 30), tzinfo=UTC), tick=False):
        cur_first, _ = rules.month_window(today)
        for client in Company.objects.filter(company_type=CompanyType.CLIENT):
            res = admin_of(client.email).get("/api/contracts/finance-metrics")
            assert res.status_code == 200, res.content
            body = res.json()
            budget, kpis = body["budget"], body["kpis"]
            where = (today.isoformat(), client.name, body)
            active = list(client.client_contracts.filter(status=ContractStatus.ACTIVE))
            # The previous month is always there, whatever the date ...
            assert budget["previousMonth"] > 0, where
            assert kpis["costPerPerson"]["previousMonth"] > 0, where
            assert kpis["utilizationRate"]["previousMonth"] > 0, where
            # ... and so are the next 7 days, with some expected quantities confirmed.
            assert kpis["upcomingServicesWeek"]["count"] > 0, where
            assert kpis["upcomingServicesWeek"]["estimatedCost"] > 0, where
            # This month: consumed once one of its contracts served a day of it (never on
            # the 1st: today's lunch is not served yet), listed once a day of it came.
            served_this_month = has_service_day(active, cur_first, today - timedelta(days=1))
            assert (budget["consumed"] > 0) == served_this_month, where
            if today.day == 1:
                assert budget["consumed"] == 0, where
            if today.day >= 8:
                assert budget["consumed"] > 0, where
            assert bool(body["recentServices"]) == has_service_day(active, cur_first, today)

        # The caterer's dashboard shows the mirror figures (revenue) on any date too.
        for caterer in Company.objects.filter(company_type=CompanyType.CATERING):
            res = admin_of(caterer.email).get("/api/contracts/finance-metrics")
            assert res.status_code == 200, res.content
            body = res.json()
            where = (today.isoformat(), caterer.name, body)
            contracts = list(caterer.catering_contracts.all())
            if not contracts:
                continue
            assert body["budget"]["previousMonth"] > 0, where
            if any(c.status == ContractStatus.ACTIVE for c in contracts):
                assert body["kpis"]["upcomingServicesWeek"]["count"] > 0, where

        monday = rules.monday_of_week(today)
        for contract in Contract.objects.filter(status=ContractStatus.ACTIVE).select_related(
            "client_company"
        ):
            res = admin_of(contract.client_company.email).get(
                f"/api/contracts/{contract.pk}/reports/weekly?weekStart={monday.isoformat()}"
            )
            assert res.status_code == 200, res.content
            report = res.json()
            assert report["entries"], (today, contract)
            assert report["totals"]["totalExpected"] > 0, (today, contract, report)

    # Deterministic: the same date gives the same rows (ids aside).
    seed(today)
    assert snapshot() == first
