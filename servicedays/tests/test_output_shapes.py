"""The weekly report and finance metrics bodies against the serializers the schema shows.

Their bodies are computed in Python (``weekly_report_data``, ``finance_metrics_for``), not
read from columns, so ``chefops.api.shapes`` does not generate them: this pins the two forms
together instead. Every key of the schema serializer is present, in its order, and none
other; every value has the type its field declares (a FloatField takes any JSON number, as the
original's JavaScript numbers); null only where the field allows it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from rest_framework import serializers

from contracts.models import Contract
from servicedays.models import ServiceDayStatus
from servicedays.selectors import finance_metrics_for, weekly_report_for
from servicedays.serializers import (
    FinanceMetricsSerializer,
    WeeklyReportSerializer,
    weekly_report_data,
)
from servicedays.tests.helpers import make_contract, make_day, make_days

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 18, 10, 15, 30, 123456, tzinfo=UTC)


def assert_shape(field: serializers.Field, value: Any, path: str = "body") -> None:
    if value is None:
        assert field.allow_null, f"{path}: null, but the schema does not allow it"
        return
    if isinstance(field, serializers.ListSerializer):
        assert isinstance(value, list), f"{path}: {value!r} is not a list"
        assert field.child is not None
        for index, item in enumerate(value):
            assert_shape(field.child, item, f"{path}[{index}]")
        return
    if isinstance(field, serializers.Serializer):
        assert isinstance(value, dict), f"{path}: {value!r} is not an object"
        assert list(value) == list(field.fields), f"{path}: keys differ from the schema"
        for name, child in field.fields.items():
            assert_shape(child, value[name], f"{path}.{name}")
        return
    checks: list[tuple[type[serializers.Field], Any]] = [
        (serializers.BooleanField, lambda v: isinstance(v, bool)),
        (serializers.IntegerField, lambda v: type(v) is int),
        (serializers.FloatField, lambda v: type(v) in (int, float)),
        (serializers.UUIDField, lambda v: str(uuid.UUID(v)) == v),
        (serializers.DateField, lambda v: date.fromisoformat(v).isoformat() == v),
        (serializers.ChoiceField, lambda v: v in field.choices),  # type: ignore[attr-defined]
        (serializers.CharField, lambda v: isinstance(v, str)),
    ]
    for kind, check in checks:
        if isinstance(field, kind):
            assert check(value), f"{path}: {value!r} is not a {kind.__name__}"
            return
    raise AssertionError(f"{path}: no check for {type(field).__name__}")


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


@pytest.mark.parametrize(
    "week_start",
    [
        datetime(2026, 3, 2, tzinfo=UTC),  # confirmed and pending days
        datetime(2026, 3, 16, 12, 30, tzinfo=UTC),  # an instant, pending days only
        datetime(2027, 1, 4, tzinfo=UTC),  # no days
    ],
)
def test_weekly_report_body_is_the_schema_shape(cast: Any, week_start: datetime) -> None:
    contract = make_contract(cast, price_per_service=Decimal("12.35"))
    _days(contract)
    report = weekly_report_for(
        contract_id=contract.pk, company=cast.client.company, week_start=week_start
    )
    assert_shape(WeeklyReportSerializer(), weekly_report_data(report))


@pytest.mark.parametrize("side", ["client", "catering"])
@pytest.mark.parametrize("with_data", [True, False])
def test_finance_metrics_body_is_the_schema_shape(cast: Any, side: str, with_data: bool) -> None:
    if with_data:
        with time_machine.travel(NOW - timedelta(days=40), tick=False):
            contract = make_contract(cast, price_per_service=Decimal("1234.56"))
        _days(contract)
        make_day(
            contract, date(2026, 2, 9), expected_quantity=30, served_quantity=31, status="CONFIRMED"
        )
    company = getattr(cast, side).company
    body = finance_metrics_for(company=company, now=NOW)
    assert_shape(FinanceMetricsSerializer(), body)
    assert (len(body["recent_services"]) > 0) is with_data


def test_the_check_catches_a_drifted_body() -> None:
    """A missing key, an extra key, a reordered key, a string for a number, a forbidden null."""
    good = {"total_expected": 1, "total_served": 2, "total_difference": 1}
    from servicedays.serializers import ReportTotalsSerializer

    assert_shape(ReportTotalsSerializer(), good)
    drifted = [
        {"total_expected": 1, "total_served": 2},
        {**good, "extra": 1},
        {"total_served": 2, "total_expected": 1, "total_difference": 1},
        {**good, "total_served": "2"},
        {**good, "total_served": None},
        {**good, "total_served": 2.0},
    ]
    for body in drifted:
        with pytest.raises(AssertionError):
            assert_shape(ReportTotalsSerializer(), body)
