"""Builders shared by the service-day tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from rest_framework.test import APIClient

from chefops.testing.factories import ContractFactory
from contracts.models import Contract
from servicedays.models import ServiceDay, ServiceDayStatus


def make_contract(cast: Any, **overrides: Any) -> Contract:
    values: dict[str, Any] = {
        "catering_company": cast.catering.company,
        "client_company": cast.client.company,
        "start_date": date(2020, 1, 1),
        "price_per_service": Decimal("15.50"),
        "min_daily_quantity": 10,
        "max_daily_quantity": 100,
        "notice_period_hours": 24,
        "weekdays": [1, 3, 5],
    }
    values.update(overrides)
    return ContractFactory.create(**values)


def make_day(contract: Contract, service_date: date, **values: Any) -> ServiceDay:
    if values.get("status") == ServiceDayStatus.CONFIRMED and "served_quantity" not in values:
        values["served_quantity"] = 0
    return ServiceDay.objects.create(contract=contract, service_date=service_date, **values)


def make_days(
    contract: Contract,
    year: int,
    month: int,
    rows: Sequence[tuple[int, int | None, int | None, str]],
) -> None:
    """One service day per (day of month, expected, served, status) row."""
    for day, expected, served, status in rows:
        make_day(
            contract,
            date(year, month, day),
            expected_quantity=expected,
            served_quantity=served,
            status=status,
        )


def post_json(client: APIClient, path: str, body: object) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")
