"""Demo service days (reference §7): two weeks for demo contracts 1-4, past days confirmed.

Unlike the original, quantities are deterministic, the weeks start on the Monday of the current
UTC week (a Sunday belongs to the week before) and confirmed days carry both timestamps.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction

from chefops import readcache
from contracts.models import Contract, ContractStatus
from servicedays import rules
from servicedays.models import ServiceDay, ServiceDayStatus

# (catering e-mail, client e-mail, expected range, served range) of demo contracts 1-4.
DEMO_CONTRACTS: list[tuple[str, str, tuple[int, int], tuple[int, int]]] = [
    ("delicias@example.com", "techcorp@example.com", (30, 69), (28, 67)),
    ("delicias@example.com", "finanzas@example.com", (80, 129), (78, 127)),
    ("sabores@example.com", "startup@example.com", (15, 34), (14, 33)),
    ("chef@example.com", "consultora@example.com", (30, 30), (30, 30)),
]
DEMO_DAYS = 14


def _pick(day: date, salt: int, low: int, high: int, minimum: int, maximum: int) -> int:
    """A fixed pseudo-random value in [low, high], kept inside the contract's [min, max]."""
    value = low + (day.toordinal() * 37 + salt * 11) % (high - low + 1)
    return max(minimum, min(maximum, value))


def seed(*, today: date) -> str:
    monday = rules.monday_of_week(today)
    last = monday + timedelta(days=DEMO_DAYS - 1)
    created_at = rules.utc_midnight(monday - timedelta(days=7))
    rows: list[ServiceDay] = []
    found: list[Contract] = []
    with transaction.atomic():
        for index, (catering, client, expected_range, served_range) in enumerate(DEMO_CONTRACTS):
            contract = (
                Contract.objects.filter(
                    catering_company__email=catering,
                    client_company__email=client,
                    status=ContractStatus.ACTIVE,
                )
                .order_by("created_at")
                .first()
            )
            if contract is None:
                continue
            found.append(contract)
            weekdays = list(contract.weekdays.values_list("day_of_week", flat=True))
            lo, hi = contract.min_daily_quantity, contract.max_daily_quantity
            for day in rules.dates_on_weekdays(monday, last, weekdays):
                row = ServiceDay(
                    contract=contract,
                    service_date=day,
                    created_at=created_at,
                    updated_at=created_at,
                )
                if day < today:
                    expected_at = rules.notice_deadline(
                        day, contract.notice_period_hours
                    ) - timedelta(hours=3)
                    served_at = rules.utc_midnight(day) + timedelta(hours=15)
                    row.expected_quantity = _pick(day, index, *expected_range, lo, hi)
                    row.served_quantity = _pick(day, index + 5, *served_range, lo, hi)
                    row.expected_confirmed_at = expected_at
                    row.served_confirmed_at = served_at
                    row.status = ServiceDayStatus.CONFIRMED
                    row.updated_at = served_at
                rows.append(row)
        ServiceDay.objects.filter(contract__in=found).delete()
        ServiceDay.objects.bulk_create(rows)
        # bulk writes send no signals: the demo tenants' cached reads are stale now
        readcache.invalidate(
            {c.catering_company_id for c in found} | {c.client_company_id for c in found}
        )
    confirmed = sum(1 for r in rows if r.status == ServiceDayStatus.CONFIRMED)
    return (
        f"service days: {len(rows)} for {len(found)} demo contracts, "
        f"{monday.isoformat()}..{last.isoformat()} ({confirmed} confirmed, "
        f"{len(rows) - confirmed} pending)"
    )
