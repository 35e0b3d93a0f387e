"""Contract rules on plain values: the state machine and the creation checks (no ORM).

Texts are the original's (reference §3.5 C4-C7, §4.2), plus the deliberate fixes of SPEC §2.4
(terminating a TERMINATED contract is refused) and §2.5 (``endDate >= startDate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Final

ACTIVE: Final = "ACTIVE"
PAUSED: Final = "PAUSED"
TERMINATED: Final = "TERMINATED"
STATUSES: Final = (ACTIVE, PAUSED, TERMINATED)

CATERING: Final = "CATERING"
CLIENT: Final = "CLIENT"


class ContractAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    TERMINATE = "terminate"


class TransitionError(ValueError):
    """A transition the state machine refuses; ``str(exc)`` is the client-facing text."""


# (action, current status) -> new status, or the reason it is refused.
_TRANSITIONS: Final[dict[tuple[ContractAction, str], str]] = {
    (ContractAction.PAUSE, ACTIVE): PAUSED,
    (ContractAction.RESUME, PAUSED): ACTIVE,
    (ContractAction.TERMINATE, ACTIVE): TERMINATED,
    (ContractAction.TERMINATE, PAUSED): TERMINATED,
}
_REFUSALS: Final[dict[tuple[ContractAction, str], str]] = {
    (ContractAction.PAUSE, PAUSED): "Contract is already paused",
    (ContractAction.PAUSE, TERMINATED): "Cannot pause a terminated contract",
    (ContractAction.RESUME, ACTIVE): "Contract is already active",
    (ContractAction.RESUME, TERMINATED): "Cannot resume a terminated contract",
    (ContractAction.TERMINATE, TERMINATED): "Cannot terminate a terminated contract",
}


def transition_error(status: str, action: ContractAction | str) -> str | None:
    """Why ``action`` is refused on a contract in ``status`` (None when it is allowed)."""
    key = (ContractAction(action), status)
    if key in _TRANSITIONS:
        return None
    if key in _REFUSALS:
        return _REFUSALS[key]
    raise ValueError(f"Unknown contract status {status!r}")


def can_transition(status: str, action: ContractAction | str) -> bool:
    return transition_error(status, action) is None


def next_status(status: str, action: ContractAction | str) -> str:
    """The status after ``action``; raises TransitionError with the reference text if refused."""
    reason = transition_error(status, action)
    if reason is not None:
        raise TransitionError(reason)
    return _TRANSITIONS[(ContractAction(action), status)]


def owner_only_message(action: ContractAction | str) -> str:
    return f"Only the contract owner (client) can {ContractAction(action).value} it"


# --- creation ---------------------------------------------------------------------------------


def quantity_range_error(min_daily_quantity: int, max_daily_quantity: int) -> str | None:
    if min_daily_quantity > max_daily_quantity:
        return "minDailyQuantity cannot be greater than maxDailyQuantity"
    return None


def service_days_errors(service_days: Sequence[object]) -> list[str]:
    """The API's field validation already says this; other callers (admin) get the same texts."""
    errors: list[str] = []
    if len({repr(d) for d in service_days}) != len(service_days):
        errors.append("serviceDays must not contain duplicate values")
    days = [d for d in service_days if isinstance(d, int) and not isinstance(d, bool)]
    if any(d > 7 for d in days):
        errors.append("each value in serviceDays must not be greater than 7")
    if any(d < 1 for d in days):
        errors.append("each value in serviceDays must not be less than 1")
    if len(days) != len(service_days):
        errors.append("each value in serviceDays must be an integer number")
    if not service_days:
        errors.append("serviceDays must contain at least 1 elements")
    return errors


def date_range_error(start_date: date, end_date: date | None) -> str | None:
    if end_date is not None and end_date < start_date:
        return "endDate must not be before startDate"
    return None


def catering_not_found_message(company_id: object) -> str:
    return f"Catering company #{company_id} not found"


def client_not_found_message(company_id: object) -> str:
    return f"Client company #{company_id} not found"


def catering_company_error(*, name: str, company_type: str, is_active: bool) -> str | None:
    """Checks 3 and 4 of C4 for an existing company proposed as the caterer."""
    if company_type != CATERING:
        return f'Company "{name}" is not a catering company'
    if not is_active:
        return f'Catering company "{name}" is not active'
    return None


def client_company_error(*, name: str, company_type: str, is_active: bool) -> str | None:
    """Checks 6 and 7 of C4 for an existing company proposed as the client."""
    if company_type != CLIENT:
        return f'Company "{name}" is not a client company'
    if not is_active:
        return f'Client company "{name}" is not active'
    return None


def active_pair_conflict_message(catering_name: str, client_name: str) -> str:
    return f'An active contract already exists between "{catering_name}" and "{client_name}"'


PARTY_ONLY_CREATE_MESSAGE: Final = "You can only create contracts for your own company"
VIEW_FORBIDDEN_MESSAGE: Final = "Not authorized to view this contract"


def contract_not_found_message(contract_id: object) -> str:
    return f"Contract #{contract_id} not found"


def is_party(company_id: object, *, catering_company_id: object, client_company_id: object) -> bool:
    return company_id is not None and company_id in (catering_company_id, client_company_id)


# --- changing the terms -------------------------------------------------------------------------

TERMS_STAFF_ONLY_MESSAGE: Final = "Only platform staff can change the terms of a contract"
TERMINATED_TERMS_MESSAGE: Final = "Cannot change the terms of a terminated contract"


def terms_change_denial(*, actor_company_id: object, actor_is_staff: bool) -> str | None:
    """Who may change an existing contract's terms: platform staff (in the admin, e.g. to
    correct what was typed at creation). The original has no such route, and a party alone
    changing what both signed would be a new contract, not an edit: company users are refused
    (a future API that lets both parties agree would add its rule here)."""
    if actor_is_staff and actor_company_id is None:
        return None
    return TERMS_STAFF_ONLY_MESSAGE


def terms_change_error(status: str) -> str | None:
    """A TERMINATED contract is history: its terms stay as they were when it ended."""
    if status == TERMINATED:
        return TERMINATED_TERMS_MESSAGE
    if status not in STATUSES:
        raise ValueError(f"Unknown contract status {status!r}")
    return None


def terms_errors(
    *,
    start_date: date,
    end_date: date | None,
    price_per_service: Decimal,
    min_daily_quantity: int,
    max_daily_quantity: int,
    notice_period_hours: int,
    service_days: Sequence[object],
) -> list[str]:
    """Every reason the terms as a whole are refused (the API's creation texts)."""
    errors: list[str] = []
    values: tuple[tuple[str, Decimal | int], ...] = (
        ("pricePerService", price_per_service),
        ("minDailyQuantity", min_daily_quantity),
        ("maxDailyQuantity", max_daily_quantity),
        ("noticePeriodHours", notice_period_hours),
    )
    for name, value in values:
        if value < 0:
            errors.append(f"{name} must not be less than 0")
    if reason := quantity_range_error(min_daily_quantity, max_daily_quantity):
        errors.append(reason)
    errors.extend(service_days_errors(service_days))
    if reason := date_range_error(start_date, end_date):
        errors.append(reason)
    return errors


def off_schedule(
    service_date: date,
    *,
    weekdays: Sequence[int],
    start_date: date,
    end_date: date | None,
) -> bool:
    """Does a service day fall outside the contract's period or its weekdays?"""
    if service_date < start_date or (end_date is not None and service_date > end_date):
        return True
    return service_date.isoweekday() not in weekdays
