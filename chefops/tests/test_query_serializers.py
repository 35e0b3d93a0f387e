"""Query serializers are reused, one per class and thread (``query_serializer`` in
chefops/api/serializers.py): each validation sees only its own data, errors never carry over,
and threads never share one."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
from rest_framework.exceptions import ValidationError

from chefops.api.serializers import StrictSerializer, query_serializer, validated_query_data
from contracts.serializers import ContractListQuery
from servicedays.serializers import ServiceDayRangeQuery


def validate(serializer_class: type[StrictSerializer], data: dict[str, Any]) -> dict[str, Any]:
    return validated_query_data(serializer_class, data)


def errors(serializer_class: type[StrictSerializer], data: dict[str, Any]) -> Any:
    with pytest.raises(ValidationError) as caught:
        validate(serializer_class, data)
    return caught.value.detail


def test_one_instance_per_class_in_a_thread() -> None:
    first = query_serializer(ServiceDayRangeQuery, {})
    assert query_serializer(ServiceDayRangeQuery, {}) is first
    assert query_serializer(ContractListQuery, {}) is not first


def test_each_validation_sees_only_its_own_data() -> None:
    with_paging = {"from": "2026-03-02", "to": "2026-03-08", "page": "2", "limit": "5"}
    assert validate(ServiceDayRangeQuery, with_paging) == {
        "from": date(2026, 3, 2),
        "to": date(2026, 3, 8),
        "page": "2",
        "limit": "5",
    }
    # No paging this time: nothing of the previous call is left in the result.
    assert validate(ServiceDayRangeQuery, {"from": "2026-04-01", "to": "2026-04-30"}) == {
        "from": date(2026, 4, 1),
        "to": date(2026, 4, 30),
    }


def test_errors_do_not_carry_over_in_either_direction() -> None:
    bad = errors(ServiceDayRangeQuery, {"from": "2026-02-30", "surprise": "1"})
    assert set(bad) == {"non_field_errors", "from", "to"}
    # The next valid query passes with its own values, not the failed call's errors.
    assert validate(ServiceDayRangeQuery, {"from": "2026-05-01", "to": "2026-05-02"}) == {
        "from": date(2026, 5, 1),
        "to": date(2026, 5, 2),
    }
    # And a later invalid one reports only its own problem.
    assert set(errors(ServiceDayRangeQuery, {"from": "2026-05-01"})) == {"to"}
    assert validate(ContractListQuery, {"status": "ACTIVE"}) == {"status": "ACTIVE"}
    assert set(errors(ContractListQuery, {"status": "NOPE"})) == {"status"}


def test_threads_never_share_an_instance() -> None:
    mine = query_serializer(ServiceDayRangeQuery, {})
    seen: list[Any] = []
    results: list[dict[str, Any]] = []

    def other_thread() -> None:
        seen.append(query_serializer(ServiceDayRangeQuery, {}))
        seen.append(query_serializer(ServiceDayRangeQuery, {}))
        results.append(validate(ServiceDayRangeQuery, {"from": "2026-06-01", "to": "2026-06-03"}))

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert seen[0] is seen[1]  # reused within that thread
    assert seen[0] is not mine
    assert results == [{"from": date(2026, 6, 1), "to": date(2026, 6, 3)}]
    # This thread's instance was not touched by the other thread's validation.
    assert validate(ServiceDayRangeQuery, {"from": "2026-07-01", "to": "2026-07-01"}) == {
        "from": date(2026, 7, 1),
        "to": date(2026, 7, 1),
    }
