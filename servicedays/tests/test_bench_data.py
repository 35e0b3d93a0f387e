"""The benchmark data set's layout (bench_data): what each contract gets at every size."""

from __future__ import annotations

from datetime import date

from servicedays.management.commands.bench_data import (
    MEASURED_MIN_WEEKDAYS,
    contract_pairs,
    days_per_contract,
    is_measured,
    weekdays_before,
)


def test_the_default_size_is_even_at_100_days_per_contract() -> None:
    measured = [is_measured(p) for p in contract_pairs(500, 500, 10000)]
    assert sum(measured) == 149  # catering 0's 100 and client 0's 50, one pair shared
    assert days_per_contract(measured, 1_000_000, MEASURED_MIN_WEEKDAYS) == [100] * 10000


def test_measured_contracts_keep_full_windows_when_the_data_set_is_small() -> None:
    measured = [is_measured(p) for p in contract_pairs(500, 500, 10000)]
    counts = days_per_contract(measured, 100_000, MEASURED_MIN_WEEKDAYS)
    assert sum(counts) == 100_000
    assert {c for c, m in zip(counts, measured, strict=True) if m} == {50}
    others = [c for c, m in zip(counts, measured, strict=True) if not m]
    assert max(others) - min(others) <= 1  # the rest spread evenly
    assert others[0] == max(others)  # remainders go to the first ones


def test_measured_contracts_grow_with_the_history_at_large_sizes() -> None:
    measured = [is_measured(p) for p in contract_pairs(1000, 1000, 20000)]
    counts = days_per_contract(measured, 10_000_003, MEASURED_MIN_WEEKDAYS)
    assert sum(counts) == 10_000_003
    assert counts[0] == 500 and counts[-1] == 500
    assert counts.count(501) == 3


def test_every_contract_measured_or_none_splits_evenly() -> None:
    assert days_per_contract([True, True, True], 10, 50) == [4, 3, 3]
    assert days_per_contract([False, False], 5, 50) == [3, 2]


def test_too_few_days_for_the_minimum_go_to_the_measured_contracts_first() -> None:
    assert days_per_contract([True, False, True], 30, 50) == [15, 0, 15]


def test_terminated_contracts_never_take_a_measured_tenant() -> None:
    pairs = contract_pairs(1000, 1000, 20000)
    assert not any(is_measured(p) for p in pairs[10000:])
    assert sum(1 for cat, _ in pairs if cat == 0) == 100
    assert sum(1 for _, cli in pairs if cli == 0) == 50


def test_weekdays_before_skips_weekends_and_today() -> None:
    friday = date(2026, 12, 4)
    assert weekdays_before(date(2026, 12, 7), 3) == [friday, date(2026, 12, 3), date(2026, 12, 2)]
