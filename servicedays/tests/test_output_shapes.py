"""The weekly report and finance metrics bodies are their schema serializers' rendering.

Both bodies are rendered by ``chefops.api.shapes.Shape.render`` from the serializers the
schema shows (``WEEKLY_REPORT``, ``FINANCE_METRICS``), the serializers reading the domain
objects by ``source``: one definition of each body. This checks that the fast rendering is
byte for byte what DRF's generic rendering of the same serializers gives, on bodies with
confirmed and pending days, nulls, fractional and integral money, and empty lists (the API
bodies themselves are pinned by chefops/tests/test_api_golden_bodies.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from chefops.api.renderers import CamelCaseJSONRenderer
from contracts.models import Contract
from servicedays.models import ServiceDayStatus
from servicedays.selectors import finance_metrics_for, weekly_report_for
from servicedays.serializers import (
    FINANCE_METRICS,
    WEEKLY_REPORT,
    FinanceMetricsSerializer,
    WeeklyReportSerializer,
)
from servicedays.tests.helpers import make_contract, make_day, make_days

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 18, 10, 15, 30, 123456, tzinfo=UTC)


def json_bytes(body: Any) -> bytes:
    """The API's rendering: 12 and 12.0 differ here, where == would not tell them apart."""
    return CamelCaseJSONRenderer().render(body)


def _days(contract: Contract) -> None:
    """Two weeks of March 2026 around NOW: confirmed, expected only, nothing, served 0."""
    rows = [
        (2, 40, 38, ServiceDayStatus.CONFIRMED),
        (4, 40, 20, ServiceDayStatus.CONFIRMED),
        (6, 35, None, ServiceDayStatus.PENDING),
        (9, None, None, ServiceDayStatus.PENDING),
        (11, 50, 0, ServiceDayStatus.CONFIRMED),
        (16, 45, None, ServiceDayStatus.PENDING),
        (18, 45, None, ServiceDayStatus.PENDING),
        (20, None, None, ServiceDayStatus.PENDING),
    ]
    make_days(contract, 2026, 3, rows)


@pytest.mark.parametrize("price", [Decimal("12.35"), Decimal("12.00")])
@pytest.mark.parametrize(
    "week_start",
    [
        datetime(2026, 3, 2, tzinfo=UTC),  # confirmed and pending days
        datetime(2026, 3, 16, 12, 30, tzinfo=UTC),  # an instant, pending days only
        datetime(2027, 1, 4, tzinfo=UTC),  # no days
    ],
)
def test_weekly_report_body_is_drfs_rendering_of_its_serializer(
    cast: Any, week_start: datetime, price: Decimal
) -> None:
    contract = make_contract(cast, price_per_service=price)
    _days(contract)
    report = weekly_report_for(
        contract_id=contract.pk, company=cast.client.company, week_start=week_start
    )
    body = json_bytes(WEEKLY_REPORT.render(report))
    assert body == json_bytes(WeeklyReportSerializer(report).data)
    assert (b'"serviceDays":[]' in body) is (week_start.year == 2027)


@pytest.mark.parametrize("side", ["client", "catering"])
@pytest.mark.parametrize("with_data", [True, False])
def test_finance_metrics_body_is_drfs_rendering_of_its_serializer(
    cast: Any, side: str, with_data: bool
) -> None:
    if with_data:
        with time_machine.travel(NOW - timedelta(days=40), tick=False):
            contract = make_contract(cast, price_per_service=Decimal("1234.56"))
        _days(contract)
        make_day(
            contract, date(2026, 2, 9), expected_quantity=30, served_quantity=31, status="CONFIRMED"
        )
    metrics = finance_metrics_for(company=getattr(cast, side).company, now=NOW)
    body = json_bytes(FINANCE_METRICS.render(metrics))
    assert body == json_bytes(FinanceMetricsSerializer(metrics).data)
    assert (len(metrics.recent_services) > 0) is with_data
    if with_data:  # a pending day's cost is null, a served one's a number
        assert b'"cost":null' in body and b'"cost":' in body.replace(b'"cost":null', b"")


def test_the_comparison_tells_integral_floats_from_integers() -> None:
    assert json_bytes({"price": 12}) != json_bytes({"price": 12.0})
