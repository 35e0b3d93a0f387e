"""Demo contracts (reference §7): the original's five contracts between the demo companies.

Run by `manage.py seed_demo` / `POST /api/seed` after companies.demo.seed. Rows are loaded
directly, without outbox events: demo data is a starting state, not something that happened,
and must not e-mail anyone.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction

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


# Reference §7, in its order: catering → client, price, flexible, min, max, notice h, days, status.
# fmt: off
DEMO_CONTRACTS = (
    DemoContract("delicias@example.com", "techcorp@example.com", "15.50", True, 20, 80, 24,
                 (1, 3, 5), ContractStatus.ACTIVE),
    DemoContract("delicias@example.com", "finanzas@example.com", "18.00", True, 50, 150, 48,
                 (1, 2, 3, 4, 5), ContractStatus.ACTIVE),
    DemoContract("sabores@example.com", "startup@example.com", "12.00", True, 10, 40, 12,
                 (2, 4), ContractStatus.ACTIVE),
    DemoContract("chef@example.com", "consultora@example.com", "14.75", False, 30, 30, 24,
                 (1, 2, 3, 4, 5), ContractStatus.ACTIVE),
    DemoContract("sabores@example.com", "techcorp@example.com", "16.00", True, 15, 60, 24,
                 (1, 3, 5), ContractStatus.PAUSED),
)
# fmt: on


class DemoCompaniesMissing(RuntimeError):
    pass


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
            contract = Contract.objects.create(
                catering_company=companies[spec.catering_email],
                client_company=companies[spec.client_email],
                start_date=today,
                end_date=None,
                price_per_service=Decimal(spec.price),
                flexible_quantity=spec.flexible,
                min_daily_quantity=spec.min_quantity,
                max_daily_quantity=spec.max_quantity,
                notice_period_hours=spec.notice_hours,
                status=spec.status,
            )
            weekdays.extend(ContractWeekday(contract=contract, day_of_week=d) for d in spec.days)
        ContractWeekday.objects.bulk_create(weekdays)
    paused = sum(1 for c in DEMO_CONTRACTS if c.status == ContractStatus.PAUSED)
    return (
        f"contracts: {len(DEMO_CONTRACTS)} ({len(DEMO_CONTRACTS) - paused} ACTIVE, "
        f"{paused} PAUSED), starting {today.isoformat()}"
    )
