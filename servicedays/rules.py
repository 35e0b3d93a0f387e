"""Pure rules of service days: calendar, deadlines, costs and finance-metrics formulas.

Everything here works on plain values (``date``, aware ``datetime``, ``Decimal``, ``int``) and is
independent of the process time zone: weekdays come from ``date.isoweekday()`` and instants are
built explicitly in UTC, never from local time (reference §11.3 lists the original's TZ bugs).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from chefops.api.fields import json_number

MAX_GENERATION_DAYS = 366
REPORT_DAYS = 7  # a weekly report covers its start date and the six days after it
UPCOMING_WINDOW_DAYS = 7  # today .. today + 7: eight calendar dates
DEVIATION_THRESHOLD = Decimal("0.10")

WEEKDAY_SHORT_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}

Number = Decimal | int


# --- Calendar ---------------------------------------------------------------------------------


def iso_weekday(day: date) -> int:
    """1 = Monday … 7 = Sunday (a property of the calendar date, not of any time zone)."""
    return day.isoweekday()


def weekday_short_name(day: date) -> str:
    """English short name as in the CSV ``Day`` column (not locale-dependent strftime)."""
    return WEEKDAY_SHORT_NAMES[day.isoweekday()]


def inclusive_day_count(from_date: date, to_date: date) -> int:
    return (to_date - from_date).days + 1


def clip_to_period(
    from_date: date, to_date: date, start_date: date, end_date: date | None
) -> tuple[date, date] | None:
    """The part of [from, to] inside the contract period [start, end] (None if empty)."""
    low = max(from_date, start_date)
    high = to_date if end_date is None else min(to_date, end_date)
    return (low, high) if low <= high else None


def dates_on_weekdays(
    from_date: date,
    to_date: date,
    weekdays: Iterable[int],
    *,
    start_date: date | None = None,
    end_date: date | None = None,
) -> list[date]:
    """Every date in [from, to] (inclusive) whose ISO weekday is in ``weekdays``, ascending,
    clipped to the contract period [start_date, end_date] when given."""
    wanted = set(weekdays)
    if not wanted:
        return []
    if start_date is not None:
        clipped = clip_to_period(from_date, to_date, start_date, end_date)
        if clipped is None:
            return []
        from_date, to_date = clipped
    out: list[date] = []
    # Counted, not stepped past ``to_date``: the day after 9999-12-31 does not exist.
    for offset in range((to_date - from_date).days + 1):
        day = from_date + timedelta(days=offset)
        if day.isoweekday() in wanted:
            out.append(day)
    return out


def monday_of_week(day: date) -> date:
    """The Monday of the ISO week containing ``day`` (a Sunday belongs to the week before)."""
    return day - timedelta(days=day.isoweekday() - 1)


def month_window(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return first, last


def previous_month_window(day: date) -> tuple[date, date]:
    return month_window(day.replace(day=1) - timedelta(days=1))


def upcoming_window(today: date) -> tuple[date, date]:
    return today, today + timedelta(days=UPCOMING_WINDOW_DAYS)


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def utc_today(now: datetime) -> date:
    return now.astimezone(UTC).date()


# --- Notice period, confirmations and fallback ------------------------------------------------


EARLIEST_INSTANT = datetime.min.replace(tzinfo=UTC)


def notice_deadline(service_date: date, notice_period_hours: int) -> datetime:
    """Service date at 00:00 UTC minus the notice period (reference §4.4).

    A notice period reaching back before year 1 (up to 2^31 - 1 hours are accepted) has its
    deadline at the first instant of the calendar: always past.
    """
    try:
        return utc_midnight(service_date) - timedelta(hours=notice_period_hours)
    except OverflowError:
        return EARLIEST_INSTANT


def within_notice_period(now: datetime, service_date: date, notice_period_hours: int) -> bool:
    """The client may still confirm: allowed while ``now <= deadline`` (equality allowed)."""
    return now <= notice_deadline(service_date, notice_period_hours)


def latest_due_service_date(now: datetime, notice_period_hours: int) -> date:
    """The last service date whose deadline has been reached at ``now``.

    deadline(d) <= now  <=>  midnight(d) <= now + N h  <=>  d <= date(now + N h) (UTC).
    The set-based fallback query uses this form so it can compare a plain date column.
    """
    try:
        return utc_today(now + timedelta(hours=notice_period_hours))
    except OverflowError:  # a notice period reaching past year 9999: every date is due
        return date.max


def quantity_within_range(quantity: int, minimum: int, maximum: int) -> bool:
    return minimum <= quantity <= maximum


def served_allowed_on(today: date, service_date: date) -> bool:
    """Served quantities are confirmed only on or after the service date (SPEC §2.6)."""
    return today >= service_date


def is_fallback_eligible(
    *,
    now: datetime,
    service_date: date,
    notice_period_hours: int,
    expected_quantity: int | None,
    expected_confirmed_at: datetime | None,
    status: str,
    contract_status: str,
) -> bool:
    """A day gets the contract minimum when nobody set an expected quantity before its deadline."""
    return (
        expected_quantity is None
        and expected_confirmed_at is None
        and status == "PENDING"
        and contract_status == "ACTIVE"
        and notice_deadline(service_date, notice_period_hours) <= now
    )


# --- Money ------------------------------------------------------------------------------------


def service_cost(served_quantity: int | None, price_per_service: Decimal) -> Decimal:
    """Per-day cost of the weekly report: served x price, a missing served counts as 0."""
    return Decimal(served_quantity or 0) * price_per_service


def js_number_text(value: Decimal) -> str:
    """A decimal printed the way JavaScript prints a number: 15.50 → 15.5, 18.00 → 18."""
    return format(value.normalize(), "f")


def money_text(value: Decimal) -> str:
    """Two fixed decimals, like JavaScript's ``toFixed(2)`` on an exact amount."""
    return format(value.quantize(Decimal("0.01")), "f")


# Money as a JSON number; integral amounts print without a fraction, like JavaScript.
as_json_number = json_number


# --- Finance metrics (reference §4.6) ---------------------------------------------------------


def js_round(value: Number) -> int:
    """JavaScript ``Math.round``: halves go toward +∞ (2.5 → 3, -2.5 → -2)."""
    return math.floor(Decimal(value) + Decimal("0.5"))


def js_round_one_decimal(value: Number) -> float:
    """``Math.round(x * 10) / 10``."""
    return math.floor(Decimal(value) * 10 + Decimal("0.5")) / 10


def projected_end_of_month(consumed: Decimal, today: date) -> int:
    return js_round(consumed / today.day * days_in_month(today))


def cost_per_person(consumed: Decimal, total_served: int) -> Decimal:
    return consumed / total_served if total_served else Decimal(0)


def percent_change(current: Decimal, previous: Decimal) -> float:
    """Relative change in percent with one decimal; 0 when there is no previous value."""
    if not previous:
        return 0.0
    return js_round_one_decimal((current - previous) / previous * 100)


def utilization_rate(total_served: int, total_expected: int) -> Decimal:
    """Served over expected, in percent (unrounded); 0 without an expected quantity."""
    if not total_expected:
        return Decimal(0)
    return Decimal(total_served) * 100 / Decimal(total_expected)


def points_change(current: Decimal, previous: Decimal) -> float:
    """Difference in percentage points with one decimal; 0 when there is no previous value."""
    if not previous:
        return 0.0
    return js_round_one_decimal(current - previous)


def deviates(total_served: int, total_expected: int) -> bool:
    """More than 10 % between what was served and what was expected over a contract's days."""
    if not total_expected:
        return False
    return Decimal(abs(total_served - total_expected)) / Decimal(total_expected) > (
        DEVIATION_THRESHOLD
    )


def difference(served: int | None, expected: int | None) -> int | None:
    if served is None or expected is None:
        return None
    return served - expected
