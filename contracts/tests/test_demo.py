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
    assert summary == "contracts: 5 (4 ACTIVE, 1 PAUSED), started 2025-12-01 and later"
    expected = [
        "Delicias del Sur -> TechCorp Argentina 15.50 flexible 20-80 24h [1, 3, 5] ACTIVE",
        "Delicias del Sur -> Finanzas Plus 18.00 flexible 50-150 48h [1, 2, 3, 4, 5] ACTIVE",
        "Sabores Corporativos -> Startup Hub 12.00 flexible 10-40 12h [2, 4] ACTIVE",
        "Chef Express -> Consultora Global 14.75 fixed 30-30 24h [1, 2, 3, 4, 5] ACTIVE",
        "Sabores Corporativos -> TechCorp Argentina 16.00 flexible 15-60 24h [1, 3, 5] PAUSED",
    ]
    assert rows() == expected
    # Started months before the seed day, in the reference's order, signed ten days before;
    # the paused one last changed the evening before its pause (on the 12th of last month).
    assert periods() == [
        (date(2025, 12, 1), None, "2025-11-21T14:00:00+00:00", "2025-11-21T14:00:00+00:00"),
        (date(2026, 2, 15), None, "2026-02-05T14:00:00+00:00", "2026-02-05T14:00:00+00:00"),
        (date(2026, 5, 1), None, "2026-04-21T14:00:00+00:00", "2026-04-21T14:00:00+00:00"),
        (date(2026, 7, 8), None, "2026-06-28T14:00:00+00:00", "2026-06-28T14:00:00+00:00"),
        (date(2026, 8, 1), None, "2026-07-22T14:00:00+00:00", "2026-10-11T18:00:00+00:00"),
    ]
    assert demo.paused_since(demo.DEMO_CONTRACTS[4], TODAY) == date(2026, 10, 12)
    assert not OutboxEvent.objects.exists()  # demo data is a state, not events to mail about

    # Running it again replaces the contracts instead of adding to them; a January seed
    # day reaches back into the year before.
    demo.seed(today=date(2027, 1, 1))
    assert rows() == expected
    assert [p[0] for p in periods()] == [
        date(2026, 2, 1),
        date(2026, 4, 15),
        date(2026, 7, 1),
        date(2026, 9, 8),
        date(2026, 10, 1),
    ]
    assert demo.paused_since(demo.DEMO_CONTRACTS[4], date(2027, 1, 1)) == date(2026, 12, 12)


def periods() -> list[tuple[date, date | None, str, str]]:
    return [
        (c.start_date, c.end_date, c.created_at.isoformat(), c.updated_at.isoformat())
        for c in Contract.objects.order_by("created_at", "id")
    ]


def test_seed_needs_the_demo_companies() -> None:
    with pytest.raises(demo.DemoCompaniesMissing, match=r"consultora@example\.com"):
        demo.seed(today=TODAY)
