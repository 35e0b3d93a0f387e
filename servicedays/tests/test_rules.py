"""Pure rules: calendar, deadlines, fallback eligibility, money and finance formulas."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from servicedays import rules

MON = date(2025, 1, 20)  # a Monday


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 1, 20), 1),
        (date(2025, 1, 22), 3),
        (date(2025, 1, 25), 6),
        (date(2025, 1, 26), 7),
        (date(2024, 2, 29), 4),
    ],
)
def test_iso_weekday(day: date, expected: int) -> None:
    assert rules.iso_weekday(day) == expected


def test_weekday_short_names_cover_the_week() -> None:
    names = [rules.weekday_short_name(MON + timedelta(days=i)) for i in range(7)]
    assert names == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


@pytest.mark.parametrize(
    ("weekdays", "from_date", "to_date", "expected"),
    [
        ([1, 3, 5], MON, date(2025, 1, 26), [MON, MON + timedelta(2), MON + timedelta(4)]),
        ([1, 2, 3, 4, 5], MON, date(2025, 1, 26), [MON + timedelta(i) for i in range(5)]),
        # Wed 22 .. Wed 29 inclusive: an 8-day window holds 6 weekdays.
        ([1, 2, 3, 4, 5], date(2025, 1, 22), date(2025, 1, 29), [
            date(2025, 1, 22), date(2025, 1, 23), date(2025, 1, 24),
            date(2025, 1, 27), date(2025, 1, 28), date(2025, 1, 29),
        ]),
        ([6, 7], MON, date(2025, 1, 26), [date(2025, 1, 25), date(2025, 1, 26)]),
        ([6], MON, date(2025, 1, 24), []),
        ([], MON, date(2025, 1, 26), []),
        ([1], MON, MON, [MON]),
        ([2], MON, MON, []),
        ([1, 3, 5], date(2025, 1, 26), MON, []),  # from after to
        ([5, 1], MON, date(2025, 1, 26), [MON, MON + timedelta(4)]),  # order-independent
    ],
)  # fmt: skip
def test_dates_on_weekdays(
    weekdays: list[int], from_date: date, to_date: date, expected: list[date]
) -> None:
    assert rules.dates_on_weekdays(from_date, to_date, weekdays) == expected


def test_dates_are_clipped_to_the_contract_period() -> None:
    every_day = [1, 2, 3, 4, 5, 6, 7]
    got = rules.dates_on_weekdays(
        MON, date(2025, 1, 31), every_day, start_date=date(2025, 1, 25), end_date=date(2025, 1, 27)
    )
    assert got == [date(2025, 1, 25), date(2025, 1, 26), date(2025, 1, 27)]
    # open-ended contract: only the start clips
    got = rules.dates_on_weekdays(MON, date(2025, 1, 22), every_day, start_date=date(2025, 1, 21))
    assert got == [date(2025, 1, 21), date(2025, 1, 22)]
    # period entirely before / after the range
    assert (
        rules.dates_on_weekdays(
            MON,
            date(2025, 1, 26),
            every_day,
            start_date=date(2024, 1, 1),
            end_date=date(2024, 12, 31),
        )
        == []
    )
    assert (
        rules.dates_on_weekdays(MON, date(2025, 1, 26), every_day, start_date=date(2025, 2, 1))
        == []
    )
    # boundaries are inclusive on both ends
    assert rules.dates_on_weekdays(MON, MON, every_day, start_date=MON, end_date=MON) == [MON]


def test_clip_to_period() -> None:
    assert rules.clip_to_period(MON, date(2025, 1, 26), date(2025, 1, 22), None) == (
        date(2025, 1, 22),
        date(2025, 1, 26),
    )
    assert rules.clip_to_period(MON, date(2025, 1, 26), date(2025, 1, 27), None) is None


def test_inclusive_day_count() -> None:
    assert rules.inclusive_day_count(MON, MON) == 1
    assert rules.inclusive_day_count(date(2025, 1, 1), date(2025, 12, 31)) == 365
    assert rules.inclusive_day_count(date(2024, 1, 1), date(2024, 12, 31)) == 366


@pytest.mark.parametrize(
    ("day", "monday"),
    [
        (date(2025, 1, 20), date(2025, 1, 20)),
        (date(2025, 1, 22), date(2025, 1, 20)),
        (date(2025, 1, 26), date(2025, 1, 20)),  # a Sunday belongs to the week before
        (date(2025, 1, 1), date(2024, 12, 30)),
    ],
)
def test_monday_of_week(day: date, monday: date) -> None:
    assert rules.monday_of_week(day) == monday


def test_month_windows() -> None:
    assert rules.month_window(date(2024, 2, 10)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert rules.month_window(date(2025, 12, 31)) == (date(2025, 12, 1), date(2025, 12, 31))
    assert rules.previous_month_window(date(2025, 1, 15)) == (date(2024, 12, 1), date(2024, 12, 31))
    assert rules.previous_month_window(date(2024, 3, 31)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert rules.upcoming_window(date(2025, 1, 28)) == (date(2025, 1, 28), date(2025, 2, 4))
    assert rules.days_in_month(date(2023, 2, 1)) == 28


def test_utc_helpers_ignore_the_offset_of_the_input() -> None:
    from zoneinfo import ZoneInfo

    late_in_buenos_aires = datetime(
        2025, 1, 20, 22, 30, tzinfo=ZoneInfo("America/Argentina/Buenos_Aires")
    )
    assert rules.utc_today(late_in_buenos_aires) == date(2025, 1, 21)
    assert rules.utc_midnight(MON) == datetime(2025, 1, 20, tzinfo=UTC)


# --- Notice period ----------------------------------------------------------------------------


def test_notice_deadline_is_utc_midnight_minus_the_notice() -> None:
    assert rules.notice_deadline(date(2026, 1, 25), 24) == datetime(2026, 1, 24, tzinfo=UTC)
    assert rules.notice_deadline(date(2026, 11, 30), 48) == datetime(2026, 11, 28, tzinfo=UTC)
    assert rules.notice_deadline(date(2026, 11, 28), 0) == datetime(2026, 11, 28, tzinfo=UTC)
    assert rules.notice_deadline(date(2026, 3, 1), 13) == datetime(2026, 2, 28, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (datetime(2026, 1, 23, 12, tzinfo=UTC), True),
        (datetime(2026, 1, 24, 0, 0, 0, tzinfo=UTC), True),  # exactly at the deadline
        (datetime(2026, 1, 24, 0, 0, 0, 1, tzinfo=UTC), False),  # a microsecond late
        (datetime(2026, 1, 24, 1, tzinfo=UTC), False),
        (datetime(2026, 1, 26, tzinfo=UTC), False),  # day already past
    ],
)
def test_within_notice_period(now: datetime, allowed: bool) -> None:
    assert rules.within_notice_period(now, date(2026, 1, 25), 24) is allowed


def test_latest_due_service_date_matches_the_deadline_rule() -> None:
    start = datetime(2026, 1, 20, tzinfo=UTC)
    for step in range(0, 24 * 5 * 4):  # every 15 minutes over five days
        now = start + timedelta(minutes=15 * step)
        for hours in (0, 1, 12, 24, 47, 48, 168):
            due = rules.latest_due_service_date(now, hours)
            assert rules.notice_deadline(due, hours) <= now
            assert rules.notice_deadline(due + timedelta(days=1), hours) > now


def test_the_calendar_ends_are_not_stepped_over() -> None:
    """Years 1 and 9999 bound Python's calendar: rules at its edges answer, never overflow."""
    last = date(9999, 12, 31)
    assert rules.dates_on_weekdays(date(9999, 12, 25), last, range(1, 8))[-2:] == [
        date(9999, 12, 30),
        last,
    ]
    assert rules.dates_on_weekdays(last, last, [5], start_date=last, end_date=last) == [last]
    assert rules.dates_on_weekdays(date(1, 1, 1), date(1, 1, 1), [1]) == [date(1, 1, 1)]
    # A notice period reaching before year 1: the deadline is the first instant, always past.
    assert rules.notice_deadline(date(2026, 1, 25), 2**31 - 1) == rules.EARLIEST_INSTANT
    assert not rules.within_notice_period(
        datetime(2026, 1, 1, tzinfo=UTC), date(2026, 1, 25), 2**31 - 1
    )
    assert rules.latest_due_service_date(datetime(2026, 1, 1, tzinfo=UTC), 2**31 - 1) == date.max
    assert rules.notice_deadline(last, 24) == datetime(9999, 12, 30, tzinfo=UTC)


def test_quantity_range_is_inclusive() -> None:
    assert rules.quantity_within_range(10, 10, 50)
    assert rules.quantity_within_range(50, 10, 50)
    assert not rules.quantity_within_range(9, 10, 50)
    assert not rules.quantity_within_range(51, 10, 50)
    assert rules.quantity_within_range(30, 30, 30)
    assert rules.quantity_within_range(0, 0, 0)


def test_served_only_on_or_after_the_day() -> None:
    assert not rules.served_allowed_on(date(2026, 1, 24), date(2026, 1, 25))
    assert rules.served_allowed_on(date(2026, 1, 25), date(2026, 1, 25))
    assert rules.served_allowed_on(date(2026, 1, 26), date(2026, 1, 25))


FALLBACK_BASE = {
    "now": datetime(2026, 1, 24, 0, 0, 1, tzinfo=UTC),
    "service_date": date(2026, 1, 25),
    "notice_period_hours": 24,
    "expected_quantity": None,
    "expected_confirmed_at": None,
    "status": "PENDING",
    "contract_status": "ACTIVE",
}


@pytest.mark.parametrize(
    ("change", "eligible"),
    [
        ({}, True),
        ({"now": datetime(2026, 1, 24, tzinfo=UTC)}, True),  # exactly at the deadline
        ({"now": datetime(2026, 1, 23, 23, 59, 59, tzinfo=UTC)}, False),
        ({"service_date": date(2026, 1, 1)}, True),  # long past days too
        ({"expected_quantity": 15}, False),
        ({"expected_confirmed_at": datetime(2026, 1, 20, tzinfo=UTC)}, False),
        ({"status": "CONFIRMED"}, False),
        ({"contract_status": "PAUSED"}, False),
        ({"contract_status": "TERMINATED"}, False),
        ({"notice_period_hours": 48}, True),
        ({"notice_period_hours": 0}, False),
    ],
)
def test_fallback_eligibility(change: dict[str, object], eligible: bool) -> None:
    assert rules.is_fallback_eligible(**{**FALLBACK_BASE, **change}) is eligible  # type: ignore[arg-type]


# --- Money ------------------------------------------------------------------------------------


def test_service_cost() -> None:
    assert rules.service_cost(10, Decimal("15.50")) == Decimal("155.00")
    assert rules.service_cost(None, Decimal("15.50")) == 0
    assert rules.service_cost(0, Decimal("15.50")) == 0
    assert rules.service_cost(33, Decimal("7.33")) == Decimal("241.89")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("15.50", "15.5"),
        ("18.00", "18"),
        ("12.35", "12.35"),
        ("100.00", "100"),
        ("0.00", "0"),
        ("0.05", "0.05"),
        ("1000000.10", "1000000.1"),
    ],
)
def test_js_number_text(value: str, text: str) -> None:
    assert rules.js_number_text(Decimal(value)) == text


def test_money_text_and_json_numbers() -> None:
    assert rules.money_text(Decimal("930")) == "930.00"
    assert rules.money_text(Decimal("821.5")) == "821.50"
    assert rules.money_text(Decimal("0")) == "0.00"
    assert rules.as_json_number(Decimal("2588.50")) == 2588.5
    assert isinstance(rules.as_json_number(Decimal("930.00")), int)
    assert rules.as_json_number(Decimal("241.89")) == 241.89


# --- Finance formulas -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Decimal("2.5"), 3),
        (Decimal("-2.5"), -2),
        (Decimal("2.4999"), 2),
        (Decimal("0.5"), 1),
        (Decimal("-0.5"), 0),
        (Decimal("-0.51"), -1),
        (Decimal("1234.5"), 1235),
        (7, 7),
    ],
)
def test_js_round_rounds_halves_up(value: Decimal, rounded: int) -> None:
    assert rules.js_round(value) == rounded


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Decimal("12.25"), 12.3),
        (Decimal("-12.25"), -12.2),
        (Decimal("12.24"), 12.2),
        (Decimal("0.05"), 0.1),
        (Decimal("33.333333"), 33.3),
    ],
)
def test_js_round_one_decimal(value: Decimal, rounded: float) -> None:
    assert rules.js_round_one_decimal(value) == rounded


def test_projection_per_day_of_month() -> None:
    # 1000 consumed by the 10th of a 31-day month → 3100.
    assert rules.projected_end_of_month(Decimal(1000), date(2025, 1, 10)) == 3100
    # 45 by the 2nd of a 30-day month = 675 exactly; 15 by the 2nd of February 2024 = 217.5 → 218.
    assert rules.projected_end_of_month(Decimal(45), date(2025, 4, 2)) == 675
    assert rules.projected_end_of_month(Decimal(15), date(2024, 2, 2)) == 218
    assert rules.projected_end_of_month(Decimal(0), date(2024, 2, 2)) == 0


def test_cost_per_person_and_change() -> None:
    assert rules.cost_per_person(Decimal("155"), 10) == Decimal("15.5")
    assert rules.cost_per_person(Decimal("155"), 0) == 0
    assert rules.percent_change(Decimal("15"), Decimal("12")) == 25.0
    assert rules.percent_change(Decimal("10"), Decimal("12")) == -16.7  # -16.666…
    assert rules.percent_change(Decimal("10"), Decimal(0)) == 0.0
    assert rules.percent_change(Decimal("10.0025"), Decimal("10")) == 0.0  # 0.025 → 0.0
    assert rules.percent_change(Decimal("10.005"), Decimal("10")) == 0.1  # 0.05 → 0.1 (half up)


def test_utilization() -> None:
    assert rules.utilization_rate(118, 100) == Decimal(118)
    assert rules.utilization_rate(1, 3) == Decimal(100) / 3
    assert rules.utilization_rate(5, 0) == 0
    assert rules.js_round(rules.utilization_rate(1, 8)) == 13  # 12.5 → 13
    assert rules.points_change(Decimal("80"), Decimal("75.25")) == 4.8  # 4.75 → 4.8
    assert rules.points_change(Decimal("80"), Decimal(0)) == 0.0


@pytest.mark.parametrize(
    ("served", "expected", "deviates"),
    [
        (110, 100, False),  # exactly 10 % is not "more than 10 %"
        (111, 100, True),
        (90, 100, False),
        (89, 100, True),
        (0, 0, False),
        (5, 0, False),
    ],
)
def test_deviation_threshold(served: int, expected: int, deviates: bool) -> None:
    assert rules.deviates(served, expected) is deviates


def test_difference() -> None:
    assert rules.difference(48, 50) == -2
    assert rules.difference(None, 50) is None
    assert rules.difference(50, None) is None
    assert rules.difference(0, 0) == 0
