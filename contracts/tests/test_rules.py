"""contracts.rules: the state machine table and the creation checks, exhaustively."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest

from contracts import rules
from contracts.rules import ACTIVE, PAUSED, STATUSES, TERMINATED, ContractAction

# Every (action, status) pair: the new status, or the refusal text.
TABLE = {
    (ContractAction.PAUSE, ACTIVE): (PAUSED, None),
    (ContractAction.PAUSE, PAUSED): (None, "Contract is already paused"),
    (ContractAction.PAUSE, TERMINATED): (None, "Cannot pause a terminated contract"),
    (ContractAction.RESUME, ACTIVE): (None, "Contract is already active"),
    (ContractAction.RESUME, PAUSED): (ACTIVE, None),
    (ContractAction.RESUME, TERMINATED): (None, "Cannot resume a terminated contract"),
    (ContractAction.TERMINATE, ACTIVE): (TERMINATED, None),
    (ContractAction.TERMINATE, PAUSED): (TERMINATED, None),
    (ContractAction.TERMINATE, TERMINATED): (None, "Cannot terminate a terminated contract"),
}


def test_table_covers_every_action_and_status() -> None:
    assert set(TABLE) == set(itertools.product(ContractAction, STATUSES))


@pytest.mark.parametrize(("action", "status"), list(TABLE))
def test_transition(action: ContractAction, status: str) -> None:
    new_status, reason = TABLE[(action, status)]
    assert rules.transition_error(status, action) == reason
    assert rules.can_transition(status, action) is (reason is None)
    # The action may be given as its plain string too (admin, commands).
    assert rules.transition_error(status, action.value) == reason
    if reason is None:
        assert rules.next_status(status, action) == new_status
    else:
        with pytest.raises(rules.TransitionError) as exc:
            rules.next_status(status, action)
        assert str(exc.value) == reason


def test_unknown_status_or_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="Unknown contract status"):
        rules.transition_error("DRAFT", ContractAction.PAUSE)
    with pytest.raises(ValueError, match="archive"):
        rules.transition_error(ACTIVE, "archive")


@pytest.mark.parametrize(
    ("action", "text"),
    [
        ("pause", "Only the contract owner (client) can pause it"),
        ("resume", "Only the contract owner (client) can resume it"),
        ("terminate", "Only the contract owner (client) can terminate it"),
    ],
)
def test_owner_only_message(action: str, text: str) -> None:
    assert rules.owner_only_message(action) == text


@pytest.mark.parametrize(
    ("minimum", "maximum", "ok"),
    [(0, 0, True), (10, 10, True), (10, 50, True), (51, 50, False), (1, 0, False)],
)
def test_quantity_range(minimum: int, maximum: int, ok: bool) -> None:
    expected = None if ok else "minDailyQuantity cannot be greater than maxDailyQuantity"
    assert rules.quantity_range_error(minimum, maximum) == expected


@pytest.mark.parametrize(
    ("end", "ok"),
    [
        (None, True),
        (date(2026, 12, 1), True),
        (date(2027, 1, 1), True),
        (date(2026, 11, 30), False),
    ],
)
def test_date_range(end: date | None, ok: bool) -> None:
    expected = None if ok else "endDate must not be before startDate"
    assert rules.date_range_error(date(2026, 12, 1), end) == expected


@pytest.mark.parametrize(
    ("company_type", "active", "expected"),
    [
        ("CATERING", True, None),
        ("CATERING", False, 'Catering company "Acme" is not active'),
        ("CLIENT", True, 'Company "Acme" is not a catering company'),
        ("CLIENT", False, 'Company "Acme" is not a catering company'),  # type before status
    ],
)
def test_catering_company_error(company_type: str, active: bool, expected: str | None) -> None:
    assert (
        rules.catering_company_error(name="Acme", company_type=company_type, is_active=active)
        == expected
    )


@pytest.mark.parametrize(
    ("company_type", "active", "expected"),
    [
        ("CLIENT", True, None),
        ("CLIENT", False, 'Client company "Acme" is not active'),
        ("CATERING", True, 'Company "Acme" is not a client company'),
        ("CATERING", False, 'Company "Acme" is not a client company'),
    ],
)
def test_client_company_error(company_type: str, active: bool, expected: str | None) -> None:
    assert (
        rules.client_company_error(name="Acme", company_type=company_type, is_active=active)
        == expected
    )


def test_fixed_texts() -> None:
    assert rules.catering_not_found_message("x") == "Catering company #x not found"
    assert rules.client_not_found_message("y") == "Client company #y not found"
    assert rules.contract_not_found_message("z") == "Contract #z not found"
    assert (
        rules.active_pair_conflict_message("Delicias", "TechCorp")
        == 'An active contract already exists between "Delicias" and "TechCorp"'
    )


@pytest.mark.parametrize(
    ("days", "errors"),
    [
        ([1, 3, 5], []),
        ([7, 1], []),
        ([1, 2, 3, 4, 5, 6, 7], []),
        ([], ["serviceDays must contain at least 1 elements"]),
        ([2, 2], ["serviceDays must not contain duplicate values"]),
        (
            [0, 8],
            [
                "each value in serviceDays must not be greater than 7",
                "each value in serviceDays must not be less than 1",
            ],
        ),
        ([1, True], ["each value in serviceDays must be an integer number"]),
        (["1"], ["each value in serviceDays must be an integer number"]),
    ],
)
def test_service_days_errors(days: list[object], errors: list[str]) -> None:
    assert rules.service_days_errors(days) == errors


def test_is_party() -> None:
    assert rules.is_party(1, catering_company_id=1, client_company_id=2)
    assert rules.is_party(2, catering_company_id=1, client_company_id=2)
    assert not rules.is_party(3, catering_company_id=1, client_company_id=2)
    assert not rules.is_party(None, catering_company_id=None, client_company_id=2)


# --- the terms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("company", "staff", "expected"),
    [
        (None, True, None),
        (None, False, rules.TERMS_STAFF_ONLY_MESSAGE),
        ("a-company", True, rules.TERMS_STAFF_ONLY_MESSAGE),  # a company user with the flag
        ("a-company", False, rules.TERMS_STAFF_ONLY_MESSAGE),
    ],
)
def test_terms_change_denial(company: str | None, staff: bool, expected: str | None) -> None:
    assert rules.terms_change_denial(actor_company_id=company, actor_is_staff=staff) == expected


def test_terms_change_error_for_every_status() -> None:
    assert {status: rules.terms_change_error(status) for status in STATUSES} == {
        ACTIVE: None,
        PAUSED: None,
        TERMINATED: "Cannot change the terms of a terminated contract",
    }
    with pytest.raises(ValueError, match="Unknown contract status"):
        rules.terms_change_error("DRAFT")


def terms(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "start_date": date(2026, 1, 1),
        "end_date": None,
        "price_per_service": Decimal("15.50"),
        "min_daily_quantity": 20,
        "max_daily_quantity": 80,
        "notice_period_hours": 24,
        "service_days": [1, 3, 5],
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"min_daily_quantity": 80, "price_per_service": Decimal(0), "notice_period_hours": 0}, []),
        ({"end_date": date(2026, 1, 1)}, []),
        ({"price_per_service": Decimal("-0.01")}, ["pricePerService must not be less than 0"]),
        ({"min_daily_quantity": -1}, ["minDailyQuantity must not be less than 0"]),
        (
            {"max_daily_quantity": -1},
            [
                "maxDailyQuantity must not be less than 0",
                "minDailyQuantity cannot be greater than maxDailyQuantity",
            ],
        ),
        ({"notice_period_hours": -5}, ["noticePeriodHours must not be less than 0"]),
        ({"min_daily_quantity": 81}, ["minDailyQuantity cannot be greater than maxDailyQuantity"]),
        ({"service_days": []}, ["serviceDays must contain at least 1 elements"]),
        ({"service_days": [8]}, ["each value in serviceDays must not be greater than 7"]),
        ({"end_date": date(2025, 12, 31)}, ["endDate must not be before startDate"]),
    ],
)
def test_terms_errors(overrides: dict[str, object], expected: list[str]) -> None:
    assert rules.terms_errors(**terms(**overrides)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 2), False),  # Monday, inside
        (date(2026, 3, 3), True),  # Tuesday
        (date(2026, 2, 27), True),  # Friday before the start
        (date(2026, 3, 1), True),  # Sunday
        (date(2026, 3, 30), False),  # Monday, the last day
        (date(2026, 4, 6), True),  # Monday after the end
    ],
)
def test_off_schedule(day: date, expected: bool) -> None:
    assert (
        rules.off_schedule(
            day, weekdays=[1, 5], start_date=date(2026, 3, 2), end_date=date(2026, 3, 30)
        )
        is expected
    )
