"""Demo contracts (reference §7): the original's five contracts between the demo companies.

Run by `manage.py seed_demo` / `POST /api/seed` after companies.demo.seed. Rows are loaded
directly, without outbox events: demo data is a starting state, not something that happened,
and must not e-mail anyone.

Unlike the original (every contract starting on the seed day), the contracts started months
before the seed day, so the demo has history to show on any date (servicedays.demo loads the
previous full month and the current month to date). Contract 5 was paused on the 12th of the
previous month. Dates are computed from the seed day only: the same day gives the same data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction

from chefops import readcache
from companies.models import Company
from contracts.models import Contract, ContractStatus, ContractWeekday


class DemoContract(NamedTuple):
    catering_email: str
    client_email: str
    price: str
    flexible: bool
    min_quantity: int
    max_quantity: int
    notice_hours: int
    days: tuple[int, ...]
    status: str
    started_months_ago: int  # the start is that many months before the seed day's month ...
    start_day: int  # ... on this day of the month (at most 28)
    paused_day: int | None = None  # PAUSED since this day of the month before the seed day's


# Reference §7, in its order: catering → client, price, flexible, min, max, notice h, days,
# status; then when it started (and, for the PAUSED one, since when it is paused). The starts
# ascend in this order, so the contract list keeps the reference's order (by creation).
# fmt: off
DEMO_CONTRACTS = (
    DemoContract("delicias@example.com", "techcorp@example.com", "15.50", True, 20, 80, 24,
                 (1, 3, 5), ContractStatus.ACTIVE, 11, 1),
    DemoContract("delicias@example.com", "finanzas@example.com", "18.00", True, 50, 150, 48,
                 (1, 2, 3, 4, 5), ContractStatus.ACTIVE, 9, 15),
    DemoContract("sabores@example.com", "startup@example.com", "12.00", True, 10, 40, 12,
                 (2, 4), ContractStatus.ACTIVE, 6, 1),
    DemoContract("chef@example.com", "consultora@example.com", "14.75", False, 30, 30, 24,
                 (1, 2, 3, 4, 5), ContractStatus.ACTIVE, 4, 8),
    DemoContract("sabores@example.com", "techcorp@example.com", "16.00", True, 15, 60, 24,
                 (1, 3, 5), ContractStatus.PAUSED, 3, 1, paused_day=12),
)
# fmt: on
SIGNED_DAYS_BEFORE_START = 10


class DemoCompaniesMissing(RuntimeError):
    pass


def month_start(day: date, months_back: int) -> date:
    """The first day of the month ``months_back`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def start_date(spec: DemoContract, today: date) -> date:
    return month_start(today, spec.started_months_ago).replace(day=spec.start_day)


def paused_since(spec: DemoContract, today: date) -> date | None:
    """The first day without service of a paused demo contract (in the previous month)."""
    if spec.paused_day is None:
        return None
    return month_start(today, 1).replace(day=spec.paused_day)


def _utc(day: date, *, hours: int) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(hours=hours)


def seed(*, today: date) -> str:
    """Replace every contract (their service days go with them) by the five demo contracts."""
    emails = {c.catering_email for c in DEMO_CONTRACTS} | {c.client_email for c in DEMO_CONTRACTS}
    with transaction.atomic():
        companies = {c.email: c for c in Company.objects.filter(email__in=emails)}
        missing = sorted(emails - companies.keys())
        if missing:
            raise DemoCompaniesMissing(
                "contracts.demo.seed needs the demo companies (run companies.demo.seed first); "
                f"missing: {', '.join(missing)}"
            )
        Contract.objects.all().delete()
        weekdays: list[ContractWeekday] = []
        for spec in DEMO_CONTRACTS:
            start = start_date(spec, today)
            contract = Contract.objects.create(
                catering_company=companies[spec.catering_email],
                client_company=companies[spec.client_email],
                start_date=start,
                end_date=None,
                price_per_service=Decimal(spec.price),
                flexible_quantity=spec.flexible,
                min_daily_quantity=spec.min_quantity,
                max_daily_quantity=spec.max_quantity,
                notice_period_hours=spec.notice_hours,
                status=spec.status,
            )
            # Signed ten days before the start (14:00 UTC); the paused one last changed the
            # evening before its pause. auto_now(_add) ignore given values: set them after.
            created = _utc(start - timedelta(days=SIGNED_DAYS_BEFORE_START), hours=14)
            paused = paused_since(spec, today)
            updated = created if paused is None else _utc(paused, hours=-6)
            Contract.objects.filter(pk=contract.pk).update(created_at=created, updated_at=updated)
            weekdays.extend(ContractWeekday(contract=contract, day_of_week=d) for d in spec.days)
        ContractWeekday.objects.bulk_create(weekdays)
        # update() and bulk_create send no signals: the parties' contract lists are stale.
        readcache.invalidate(c.pk for c in companies.values())
    paused_count = sum(1 for c in DEMO_CONTRACTS if c.status == ContractStatus.PAUSED)
    first = min(start_date(c, today) for c in DEMO_CONTRACTS)
    return (
        f"contracts: {len(DEMO_CONTRACTS)} ({len(DEMO_CONTRACTS) - paused_count} ACTIVE, "
        f"{paused_count} PAUSED), started {first.isoformat()} and later"
    )
