"""Writes on service days: on-demand generation and the two confirmations.

Each service opens its transaction, locks what it changes, checks the rules in the documented
order, writes, and emits its outbox event in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from chefops.api.errors import BadRequest, Conflict, Forbidden, NotFound
from chefops.api.fields import iso_ms
from chefops.api.permissions import MANAGERS, require_company_type, require_role
from companies.models import CompanyType, User
from companies.rules import is_platform_staff
from contracts import rules as contract_rules
from contracts.models import Contract, ContractStatus
from outbox.services import outbox_event_emit
from servicedays import rules
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.selectors import NOT_A_PARTY, contract_not_found, is_party


def _company(user: User) -> Any:
    if user.company is None:  # platform staff have no company and act only through the admin
        raise Forbidden("This action requires a company account")
    return user.company


def _is_staff(user: User) -> bool:
    """Platform staff confirm on a party's behalf in the admin (a client that phoned its
    headcount in): no party or company-type check, every other rule as for the party."""
    return is_platform_staff(company_id=user.company_id, is_staff=user.is_staff)


# --- Generation -------------------------------------------------------------------------------


def service_days_generate(
    *, contract_id: uuid.UUID, user: User, from_date: date, to_date: date
) -> list[ServiceDay]:
    """Create the missing days of [from, to] on the contract's weekdays, inside its period.

    Insert-if-absent: rows that exist (created earlier, by the daily job, or concurrently)
    are left alone, and only the rows this call created are returned, by date.
    """
    company = _company(user)
    with transaction.atomic():
        contract = Contract.objects.select_for_update().filter(pk=contract_id).first()
        if contract is None:
            raise contract_not_found(contract_id)
        if not is_party(contract, company):
            raise Forbidden(NOT_A_PARTY)
        require_role(user, MANAGERS)
        if contract.status != ContractStatus.ACTIVE:
            raise BadRequest("Can only generate service days for ACTIVE contracts")
        weekdays = list(contract.weekdays.values_list("day_of_week", flat=True))
        dates = rules.dates_on_weekdays(
            from_date,
            to_date,
            weekdays,
            start_date=contract.start_date,
            end_date=contract.end_date,
        )
        if not dates:
            return []
        now = timezone.now()
        candidates = [
            ServiceDay(
                id=uuid.uuid4(),
                contract=contract,  # its parties: whose cached reads the insert makes stale
                service_date=day,
                created_at=now,
                updated_at=now,
            )
            for day in dates
        ]
        ServiceDay.objects.bulk_create(candidates, ignore_conflicts=True)
        # With ignore_conflicts the database does not say which rows went in; the ids we
        # chose do: a candidate that lost to an existing row simply is not there.
        return list(
            ServiceDay.objects.filter(pk__in=[c.pk for c in candidates]).order_by("service_date")
        )


# --- Confirmations ----------------------------------------------------------------------------


def _locked_day(service_day_id: uuid.UUID) -> ServiceDay:
    day = (
        ServiceDay.objects.select_for_update(of=("self",))
        .select_related("contract")
        .filter(pk=service_day_id)
        .first()
    )
    if day is None:
        raise NotFound(f"Service day with id {service_day_id} not found")
    return day


def _require_active(contract: Contract) -> None:
    if contract.status != ContractStatus.ACTIVE:
        raise BadRequest(
            f"Contract is {contract.status}, only ACTIVE contracts allow this operation"
        )


def _event_payload(day: ServiceDay) -> dict[str, Any]:
    contract = day.contract
    return {
        "serviceDayId": str(day.pk),
        "contractId": str(contract.pk),
        "cateringCompanyId": str(contract.catering_company_id),
        "clientCompanyId": str(contract.client_company_id),
        "serviceDate": day.service_date.isoformat(),
    }


def service_day_confirm_expected(
    *, service_day_id: uuid.UUID, user: User, expected_quantity: int
) -> ServiceDay:
    """The client states how many people to expect, before the notice deadline, once.
    Platform staff may do it for the client (the admin), under the same rules."""
    staff = _is_staff(user)
    if not staff:
        require_company_type(user, CompanyType.CLIENT)
        company = _company(user)
    with transaction.atomic():
        day = _locked_day(service_day_id)
        contract = day.contract
        if not staff and contract.client_company_id != company.pk:
            raise Forbidden("Only the client company can confirm expected quantity")
        _require_active(contract)
        if day.status == ServiceDayStatus.CONFIRMED:
            raise BadRequest("ServiceDay is already confirmed")
        if day.expected_confirmed_at is not None:
            raise BadRequest("Expected quantity has already been confirmed and cannot be changed")
        now = timezone.now()
        if not rules.within_notice_period(now, day.service_date, contract.notice_period_hours):
            deadline = rules.notice_deadline(day.service_date, contract.notice_period_hours)
            raise BadRequest(
                f"Notice period of {contract.notice_period_hours} hours has passed. "
                f"Deadline was {iso_ms(deadline)}"
            )
        if not rules.quantity_within_range(
            expected_quantity, contract.min_daily_quantity, contract.max_daily_quantity
        ):
            raise BadRequest(
                f"Expected quantity must be between {contract.min_daily_quantity} "
                f"and {contract.max_daily_quantity}"
            )
        day.expected_quantity = expected_quantity
        day.expected_confirmed_at = now
        day.updated_at = now
        day.save(update_fields=["expected_quantity", "expected_confirmed_at", "updated_at"])
        outbox_event_emit(
            event_type="servicedays.expected_confirmed",
            aggregate_type="ServiceDay",
            aggregate_id=day.pk,
            payload={
                **_event_payload(day),
                "expectedQuantity": expected_quantity,
                "confirmedAt": iso_ms(now),
            },
            actor=user,
        )
    return day


def service_day_confirm_served(
    *, service_day_id: uuid.UUID, user: User, served_quantity: int
) -> ServiceDay:
    """The caterer records how many were served, on or after the day; the day is then final.
    Platform staff may do it for the caterer (the admin), under the same rules."""
    staff = _is_staff(user)
    if not staff:
        require_company_type(user, CompanyType.CATERING)
        company = _company(user)
    with transaction.atomic():
        day = _locked_day(service_day_id)
        contract = day.contract
        if not staff and contract.catering_company_id != company.pk:
            raise Forbidden("Only the catering company can confirm served quantity")
        _require_active(contract)
        if day.status == ServiceDayStatus.CONFIRMED:
            raise BadRequest("ServiceDay is already confirmed")
        now = timezone.now()
        if not rules.served_allowed_on(rules.utc_today(now), day.service_date):
            raise BadRequest("Served quantity can only be confirmed on or after the service date")
        day.served_quantity = served_quantity
        day.served_confirmed_at = now
        day.status = ServiceDayStatus.CONFIRMED
        day.updated_at = now
        day.save(update_fields=["served_quantity", "served_confirmed_at", "status", "updated_at"])
        outbox_event_emit(
            event_type="servicedays.served_confirmed",
            aggregate_type="ServiceDay",
            aggregate_id=day.pk,
            payload={
                **_event_payload(day),
                "expectedQuantity": day.expected_quantity,
                "servedQuantity": served_quantity,
                "confirmedAt": iso_ms(now),
            },
            actor=user,
        )
    return day


# --- Terms changed ----------------------------------------------------------------------------


def service_days_drop_off_schedule(
    *,
    contract: Contract,
    weekdays: Sequence[int],
    start_date: date,
    end_date: date | None,
    from_date: date,
) -> int:
    """Delete the contract's days from ``from_date`` on that its new terms no longer serve
    (outside [start, end] or on a weekday it dropped); returns how many.

    Called by ``contracts.services.contract_update_terms`` in its transaction, the contract
    row locked. Days before ``from_date`` are history and stay whatever the new terms. A day
    ahead that already carries a quantity (confirmed by a party, or the fallback's) is a
    promise made under the old terms: the change is refused (409) rather than erasing it.
    The days are locked first, so a confirmation that commits meanwhile is seen here.
    """
    ahead = list(
        ServiceDay.objects.select_for_update()
        .filter(contract_id=contract.pk, service_date__gte=from_date)
        .order_by("service_date")
        .only("id", "service_date", "expected_quantity", "status")
    )
    off = [
        day
        for day in ahead
        if contract_rules.off_schedule(
            day.service_date, weekdays=weekdays, start_date=start_date, end_date=end_date
        )
    ]
    kept = [
        day
        for day in off
        if day.expected_quantity is not None or day.status == ServiceDayStatus.CONFIRMED
    ]
    if kept:
        dates = ", ".join(day.service_date.isoformat() for day in kept)
        raise Conflict(
            f"Service days with a confirmed quantity fall outside the new terms: {dates}"
        )
    if not off:
        return 0
    ServiceDay.objects.filter(contract_id=contract.pk, pk__in=[day.pk for day in off]).delete()
    return len(off)
