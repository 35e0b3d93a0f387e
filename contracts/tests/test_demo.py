"""contracts.demo.seed: the reference's five contracts between the demo companies (§7)."""

from __future__ import annotations

from datetime import date

import pytest

from companies import demo as company_demo
from contracts import demo
from contracts.models import Contract
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 28)


def rows() -> list[str]:
    return [
        f"{c.catering_company.name} -> {c.client_company.name} {c.price_per_service} "
        f"{'flexible' if c.flexible_quantity else 'fixed'} {c.min_daily_quantity}-"
        f"{c.max_daily_quantity} {c.notice_period_hours}h "
        f"{[w.day_of_week for w in c.weekdays.all()]} {c.status}"
        for c in Contract.objects.select_related("catering_company", "client_company")
        .prefetch_related("weekdays")
        .order_by("created_at", "id")
    ]


def test_seed_loads_the_reference_contracts_deterministically() -> None:
    company_demo.seed(today=TODAY)
    summary = demo.seed(today=TODAY)
    assert summary == "contracts: 5 (4 ACTIVE, 1 PAUSED), starting 2026-11-28"
    expected = [
        "Delicias del Sur -> TechCorp Argentina 15.50 flexible 20-80 24h [1, 3, 5] ACTIVE",
        "Delicias del Sur -> Finanzas Plus 18.00 flexible 50-150 48h [1, 2, 3, 4, 5] ACTIVE",
        "Sabores Corporativos -> Startup Hub 12.00 flexible 10-40 12h [2, 4] ACTIVE",
        "Chef Express -> Consultora Global 14.75 fixed 30-30 24h [1, 2, 3, 4, 5] ACTIVE",
        "Sabores Corporativos -> TechCorp Argentina 16.00 flexible 15-60 24h [1, 3, 5] PAUSED",
    ]
    assert rows() == expected
    assert set(Contract.objects.values_list("start_date", "end_date")) == {(TODAY, None)}
    assert not OutboxEvent.objects.exists()  # demo data is a state, not events to mail about

    # Running it again replaces the contracts instead of adding to them.
    demo.seed(today=date(2026, 12, 1))
    assert rows() == expected
    assert set(Contract.objects.values_list("start_date", flat=True)) == {date(2026, 12, 1)}


def test_seed_needs_the_demo_companies() -> None:
    with pytest.raises(demo.DemoCompaniesMissing, match=r"consultora@example\.com"):
        demo.seed(today=TODAY)
