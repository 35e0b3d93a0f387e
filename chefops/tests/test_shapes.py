"""chefops/api/shapes.py: the fast forms of a response object are derived from its serializer.

The SQL-row form is pinned to the instance form on real rows by the list tests
(contracts/tests/test_api_read.py, servicedays/tests/test_listing.py) and, byte for byte, by
chefops/tests/test_api_golden_bodies.py; here the instance form is pinned to DRF's own
reading of the declared fields, and the derivation to the serializer's field list.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from rest_framework import serializers

from chefops.api.naming import to_camel
from chefops.api.shapes import Shape
from chefops.testing.factories import ContractFactory
from contracts.selectors import contract_for_output
from contracts.serializers import CONTRACT, ContractOutput
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.serializers import SERVICE_DAY, ServiceDaySerializer

SHAPES = [(CONTRACT, ContractOutput), (SERVICE_DAY, ServiceDaySerializer)]


@pytest.mark.parametrize(("shape", "serializer"), SHAPES)
def test_a_shape_is_its_serializers_fields_in_order(
    shape: Shape, serializer: type[serializers.ModelSerializer]
) -> None:
    assert shape.names == list(serializer.Meta.fields)
    assert list(serializer().fields) == shape.names


@pytest.mark.django_db
@pytest.mark.parametrize("confirmed", [False, True])
def test_service_day_fast_form_equals_the_generic_representation(confirmed: bool) -> None:
    contract = ContractFactory.create()
    at = datetime(2026, 3, 2, 9, 30, 1, 123999, tzinfo=UTC)
    day = ServiceDay.objects.create(
        contract=contract,
        service_date=date(2026, 3, 4),
        expected_quantity=12 if confirmed else None,
        served_quantity=11 if confirmed else None,
        expected_confirmed_at=at if confirmed else None,
        served_confirmed_at=at if confirmed else None,
        status=ServiceDayStatus.CONFIRMED if confirmed else ServiceDayStatus.PENDING,
    )
    day.refresh_from_db()
    fast = SERVICE_DAY.represent(day)
    generic = serializers.ModelSerializer.to_representation(ServiceDaySerializer(), day)
    assert fast == dict(generic)
    assert list(fast) == SERVICE_DAY.names
    assert (fast["expected_confirmed_at"] == "2026-03-02T09:30:01.123Z") is confirmed


@pytest.mark.django_db
@pytest.mark.parametrize("end_date", [None, date(2027, 3, 1)])
def test_contract_fast_form_equals_the_generic_representation(end_date: date | None) -> None:
    created = ContractFactory.create(
        price_per_service=Decimal("18.00"), end_date=end_date, weekdays=[6, 1, 7]
    )
    contract = contract_for_output(contract_id=created.pk)
    fast = ContractOutput(contract).data
    generic = serializers.ModelSerializer.to_representation(ContractOutput(), contract)
    assert dict(fast) == dict(generic)
    assert list(fast) == CONTRACT.names
    assert fast["service_days"] == [6, 1, 7]
    assert fast["price_per_service"] == 18.0


class _Nullable(serializers.Serializer):
    ref = serializers.UUIDField(allow_null=True)
    amount = serializers.FloatField(allow_null=True)
    flag = serializers.BooleanField(allow_null=True)
    day = serializers.DateField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    text = serializers.CharField(allow_null=True)


def test_row_conversion_keeps_nulls_and_converts_values() -> None:
    from_row = Shape(_Nullable).from_row(1)
    assert from_row(("skipped", None, None, None, None, None, None)) == {
        to_camel(name): None for name in ("ref", "amount", "flag", "day", "at", "text")
    }
    from django.db import connection

    row: tuple[Any, ...] = (
        "skipped",
        "0123456789abcdef0123456789abcdef",  # SQLite's form of a UUID
        Decimal("2.50"),
        1,
        date(2026, 1, 2),
        datetime(2026, 1, 2, 3, 4, 5, 678901),  # SQLite: naive UTC
        "x",
    )
    if connection.vendor == "postgresql":  # select() made PostgreSQL write these as text
        row = (
            "skipped",
            "01234567-89ab-cdef-0123-456789abcdef",
            Decimal("2.50"),
            1,
            "2026-01-02",
            "2026-01-02T03:04:05.678Z",
            "x",
        )
    assert from_row(row) == {
        "ref": "01234567-89ab-cdef-0123-456789abcdef",
        "amount": 2.5,
        "flag": True,
        "day": "2026-01-02",
        "at": "2026-01-02T03:04:05.678Z",
        "text": "x",
    }


class _Unsupported(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=5, decimal_places=2)


class _Dotted(serializers.Serializer):
    name = serializers.CharField(source="company.name")


class _FormattedDate(serializers.Serializer):
    day = serializers.DateField(format="%d/%m/%Y")


@pytest.mark.parametrize(
    ("serializer", "message"),
    [
        (_Unsupported, "amount: no fast conversion for DecimalField"),
        (_Dotted, "name: the source 'company.name' is not an attribute"),
        (_FormattedDate, "day: a DateField with format '%d/%m/%Y'"),
    ],
)
def test_a_field_without_a_fast_form_is_refused(serializer: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Shape(serializer).from_row()


def test_select_needs_an_expression_for_every_field_that_is_no_column() -> None:
    with pytest.raises(TypeError, match="service_days: a method field needs a SQL expression"):
        CONTRACT.select("c")
    with pytest.raises(TypeError, match="fields the shape does not have"):
        SERVICE_DAY.select("sd", nickname="1")


class _Inner(serializers.Serializer):
    day = serializers.DateField()


class _Outer(serializers.Serializer):
    name = serializers.CharField()
    inner = _Inner(source="*")
    items = _Inner(many=True, source="rows")


def test_a_nested_object_has_no_sql_row_or_instance_form() -> None:
    with pytest.raises(TypeError, match="inner: a nested object has no SQL form"):
        Shape(_Outer).select("o")
    with pytest.raises(TypeError, match="inner: a nested object has no row form"):
        Shape(_Outer).from_row()
    with pytest.raises(TypeError, match="inner: a nested object has no instance form"):
        Shape(_Outer).represent(object())


def test_render_follows_sources_into_nested_objects_and_lists() -> None:
    class Row:
        def __init__(self, day: date) -> None:
            self.day = day

    class Outer:
        name = "x"
        day = date(2026, 3, 2)
        rows = [Row(date(2026, 3, 3)), Row(date(2026, 3, 4))]

    assert Shape(_Outer).render(Outer()) == {
        "name": "x",
        "inner": {"day": "2026-03-02"},
        "items": [{"day": "2026-03-03"}, {"day": "2026-03-04"}],
    }


class _WithMethod(serializers.Serializer):
    caption = serializers.SerializerMethodField()


def test_render_refuses_a_method_field() -> None:
    with pytest.raises(TypeError, match="caption: a method field has no rendered form"):
        Shape(_WithMethod).render(object())
