"""Contract input and output serializers (snake_case here, camelCase on the wire)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chefops.api import fields
from chefops.api.fields import is_number
from chefops.api.serializers import ApiModelSerializer, StrictSerializer
from chefops.api.shapes import Shape
from contracts.models import Contract, ContractStatus


class BoundedIntegerField(fields.IntegerField):
    """``@IsInt @Min(0)`` of the original; the shared field adds the ``integer`` column's
    upper bound, which speaks only for numbers (a missing or mistyped value still yields
    exactly the original's two messages)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, **kwargs)


class PriceField(fields.MoneyField):
    """``@IsNumber @Min(0)`` of the original; the upper bound, again, speaks only for numbers."""

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        return [
            (key, _only_for_numbers(passes) if key == "max" else passes, message)
            for key, passes, message in super().checks()
        ]


def _only_for_numbers(passes: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: not is_number(value) or passes(value)


class ContractCreateInput(StrictSerializer):
    """``CreateContractDto``: fields in the original's declaration order (message order)."""

    catering_company_id = fields.UUIDField()
    client_company_id = fields.UUIDField()
    start_date = fields.IsoDateField(required=False, allow_null=True)
    end_date = fields.IsoDateField(required=False, allow_null=True)
    price_per_service = PriceField()
    flexible_quantity = fields.BooleanField(required=False, allow_null=True)
    min_daily_quantity = BoundedIntegerField()
    max_daily_quantity = BoundedIntegerField()
    notice_period_hours = BoundedIntegerField()
    service_days = fields.IntArrayField(min_size=1, min_value=1, max_value=7, unique=True)


class ContractListQuery(StrictSerializer):
    status = fields.ChoiceField(choices=ContractStatus.values)


class ContractOutput(ApiModelSerializer):
    """Reference §3.5's contract object, then ``cateringName`` / ``clientName``."""

    catering_company_id = serializers.UUIDField(read_only=True)
    client_company_id = serializers.UUIDField(read_only=True)
    price_per_service = serializers.FloatField(read_only=True)
    service_days = serializers.SerializerMethodField()
    # Annotated by contracts.selectors (with_weekdays / _with_relations).
    catering_name = serializers.CharField(read_only=True)
    client_name = serializers.CharField(read_only=True)

    class Meta:
        model = Contract
        fields = (
            "id",
            "catering_company_id",
            "client_company_id",
            "start_date",
            "end_date",
            "price_per_service",
            "flexible_quantity",
            "min_daily_quantity",
            "max_daily_quantity",
            "notice_period_hours",
            "status",
            "created_at",
            "updated_at",
            "service_days",
            "catering_name",
            "client_name",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField(min_value=1)))
    def get_service_days(self, obj: Contract) -> list[int]:
        # Attached by contracts.selectors.with_weekdays (one query per page, insertion order).
        return list(obj.weekday_numbers)  # type: ignore[attr-defined]

    def to_representation(self, instance: Contract) -> dict[str, Any]:
        # Generated from the declared fields above (chefops/api/shapes.py): the list endpoint
        # builds the same objects from SQL rows with CONTRACT, and a page of up to 500
        # contracts through DRF's generic representation cost most of the request.
        return CONTRACT.represent(instance, self)


CONTRACT = Shape(ContractOutput)
