"""ContractOutput's hand-written representation equals what its declared fields produce."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from rest_framework import serializers

from chefops.testing.factories import ContractFactory
from contracts.selectors import contract_for_output
from contracts.serializers import ContractOutput


@pytest.mark.django_db
@pytest.mark.parametrize("end_date", [None, date(2027, 3, 1)])
def test_fast_representation_matches_the_declared_fields(end_date: date | None) -> None:
    created = ContractFactory.create(
        price_per_service=Decimal("18.00"), end_date=end_date, weekdays=[6, 1, 7]
    )
    contract = contract_for_output(contract_id=created.pk)
    fast = ContractOutput(contract).data
    generic = serializers.ModelSerializer.to_representation(ContractOutput(), contract)
    assert dict(fast) == dict(generic)
    assert fast["service_days"] == [6, 1, 7]
    assert fast["price_per_service"] == 18.0
    assert fast["created_at"].endswith("Z")
    assert len(fast["created_at"]) == 24
