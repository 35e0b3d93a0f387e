"""Contract writes: creation, the pause / resume / terminate transitions, and the terms.

Each service is one transaction that locks what it changes, checks the rule, writes, and emits
the matching outbox event in the same transaction (STYLE.md "One code path per action"): the
API, the admin actions and any command call these functions.

Who may act (``actor``):
- a company user: must be MANAGER or ADMIN, and a party (create) or the contract's client
  (transitions);
- platform staff (no company, ``is_staff``) through the Django admin: no party or role check;
  changing the terms of an existing contract is theirs alone (``contract_update_terms``);
- ``None``: trusted internal callers (demo data, maintenance commands).

A contract that becomes ACTIVE (created, or resumed from PAUSED) gets its service days of the
generation window (today .. today + 7, UTC) right after the commit, by the daily job's code
for that one contract in a Celery task (``servicedays.tasks.generate_for_contract``), instead
of at the next midnight. A resume does not fill the paused weeks in: only the window ahead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import DataError, IntegrityError, transaction

from chefops.api.errors import BadRequest, Conflict, Forbidden, NotFound
from chefops.api.fields import iso_ms
from chefops.api.naming import to_camel
from chefops.api.permissions import MANAGERS, require_role
from companies.models import Company, User
from contracts import rules
from contracts.models import Contract, ContractStatus, ContractWeekday, today_utc
from contracts.rules import ContractAction
from outbox.services import outbox_event_emit

AGGREGATE_TYPE = "Contract"

EVENT_CREATED = "contract.created"
EVENT_PAUSED = "contract.paused"
EVENT_RESUMED = "contract.resumed"
EVENT_TERMINATED = "contract.terminated"
EVENT_TYPES = (EVENT_CREATED, EVENT_PAUSED, EVENT_RESUMED, EVENT_TERMINATED)
# Not in EVENT_TYPES (the events the parties are e-mailed about): staff corrections of the
# terms go to the audit log only.
EVENT_UPDATED = "contract.updated"

TERM_FIELDS = (
    "start_date",
    "end_date",
    "price_per_service",
    "flexible_quantity",
    "min_daily_quantity",
    "max_daily_quantity",
    "notice_period_hours",
)


def _acting_company_id(actor: User | None) -> uuid.UUID | None:
    """The company on whose behalf ``actor`` acts (None for staff and internal callers)."""
    if actor is None:
        return None
    if actor.company_id is not None:
        return actor.company_id
    if actor.is_staff:
        return None
    raise Forbidden("This action requires a company account")


def _iso_date(value: date | None) -> str | None:
    # The original's events carry dates as JS Date ISO strings at UTC midnight.
    return None if value is None else f"{value.isoformat()}T00:00:00.000Z"


def _active_pair_conflict(catering: Company, client: Company) -> Conflict:
    return Conflict(rules.active_pair_conflict_message(catering.name, client.name))


def _has_active_contract(catering_id: Any, client_id: Any, *, exclude_id: Any = None) -> bool:
    qs = Contract.objects.filter(
        catering_company_id=catering_id, client_company_id=client_id, status=ContractStatus.ACTIVE
    )
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.exists()


def contract_create(
    *,
    actor: User | None,
    catering_company_id: uuid.UUID,
    client_company_id: uuid.UUID,
    price_per_service: Decimal,
    min_daily_quantity: int,
    max_daily_quantity: int,
    notice_period_hours: int,
    service_days: Sequence[int],
    start_date: date | None = None,
    end_date: date | None = None,
    flexible_quantity: bool = True,
) -> Contract:
    """Create an ACTIVE contract with its weekdays and emit ``contract.created``; its days of
    the generation window are generated after the commit.

    Check order (reference C4, then the fixes): role → min/max → catering exists, is a
    caterer, is active → client exists, is a client, is active → the caller's company is a
    party → endDate >= startDate → no other ACTIVE contract for the pair (409). The party check
    follows the company checks so the reference's texts and order stay intact for every
    caller that is allowed to create at all.
    """
    acting_company_id = _acting_company_id(actor)
    if actor is not None and acting_company_id is not None:
        require_role(actor, MANAGERS)
    if reason := rules.quantity_range_error(min_daily_quantity, max_daily_quantity):
        raise BadRequest(reason)
    if day_errors := rules.service_days_errors(service_days):
        raise BadRequest(day_errors)

    with transaction.atomic():
        catering = Company.objects.filter(pk=catering_company_id).first()
        if catering is None:
            raise NotFound(rules.catering_not_found_message(catering_company_id))
        if reason := rules.catering_company_error(
            name=catering.name, company_type=catering.company_type, is_active=catering.is_active
        ):
            raise BadRequest(reason)
        client = Company.objects.filter(pk=client_company_id).first()
        if client is None:
            raise NotFound(rules.client_not_found_message(client_company_id))
        if reason := rules.client_company_error(
            name=client.name, company_type=client.company_type, is_active=client.is_active
        ):
            raise BadRequest(reason)
        if acting_company_id is not None and not rules.is_party(
            acting_company_id, catering_company_id=catering.pk, client_company_id=client.pk
        ):
            raise Forbidden(rules.PARTY_ONLY_CREATE_MESSAGE)
        start = start_date or today_utc()
        if reason := rules.date_range_error(start, end_date):
            raise BadRequest(reason)
        if _has_active_contract(catering.pk, client.pk):
            raise _active_pair_conflict(catering, client)

        try:
            # A concurrent create for the same pair passes the check above and then waits on
            # the partial unique index; the savepoint keeps the transaction usable so the loser
            # gets the same 409 instead of a 500.
            with transaction.atomic():
                contract = Contract.objects.create(
                    catering_company=catering,
                    client_company=client,
                    start_date=start,
                    end_date=end_date,
                    price_per_service=price_per_service,
                    flexible_quantity=flexible_quantity,
                    min_daily_quantity=min_daily_quantity,
                    max_daily_quantity=max_daily_quantity,
                    notice_period_hours=notice_period_hours,
                    status=ContractStatus.ACTIVE,
                )
        except IntegrityError:
            if _has_active_contract(catering.pk, client.pk):
                raise _active_pair_conflict(catering, client) from None
            raise
        # Ids ascend in insertion order, so reads return the weekdays in the order sent.
        ContractWeekday.objects.bulk_create(
            [ContractWeekday(contract=contract, day_of_week=day) for day in service_days]
        )
        outbox_event_emit(
            event_type=EVENT_CREATED,
            aggregate_type=AGGREGATE_TYPE,
            aggregate_id=contract.pk,
            payload={
                "contractId": str(contract.pk),
                "cateringCompanyId": str(catering.pk),
                "clientCompanyId": str(client.pk),
                "startDate": _iso_date(contract.start_date),
                "endDate": _iso_date(contract.end_date),
                "pricePerService": float(contract.price_per_service),
                "minDailyQuantity": contract.min_daily_quantity,
                "maxDailyQuantity": contract.max_daily_quantity,
                "serviceDays": list(service_days),
            },
            actor=actor,
        )
        _generate_service_days_after_commit(contract.pk)
    return contract


def _generate_service_days_after_commit(contract_id: uuid.UUID) -> None:
    # servicedays depends on contracts (its models, the daily job): imported at call time so
    # that contracts never needs servicedays to load.
    from servicedays.tasks import generate_for_contract_on_commit

    generate_for_contract_on_commit(contract_id)


def _contract_transition(
    *, contract_id: uuid.UUID, actor: User | None, action: ContractAction
) -> Contract:
    with transaction.atomic():
        contract = (
            Contract.objects.select_for_update(of=("self",))
            .select_related("catering_company", "client_company")
            .filter(pk=contract_id)
            .first()
        )
        if contract is None:
            raise NotFound(rules.contract_not_found_message(contract_id))
        acting_company_id = _acting_company_id(actor)
        if actor is not None and acting_company_id is not None:
            if acting_company_id != contract.client_company_id:
                raise Forbidden(rules.owner_only_message(action))
            require_role(actor, MANAGERS)
        previous = contract.status
        try:
            new_status = rules.next_status(previous, action)
        except rules.TransitionError as exc:
            raise BadRequest(str(exc)) from None

        becomes_active = new_status == ContractStatus.ACTIVE
        if becomes_active and _has_active_contract(
            contract.catering_company_id, contract.client_company_id, exclude_id=contract.pk
        ):
            raise _active_pair_conflict(contract.catering_company, contract.client_company)
        contract.status = new_status
        try:
            # Two PAUSED contracts of one pair resumed at once: the index decides (409).
            with transaction.atomic():
                contract.save(update_fields=["status", "updated_at"])
        except IntegrityError:
            if becomes_active and _has_active_contract(
                contract.catering_company_id, contract.client_company_id, exclude_id=contract.pk
            ):
                raise _active_pair_conflict(
                    contract.catering_company, contract.client_company
                ) from None
            raise

        changed_at = iso_ms(contract.updated_at)
        payload: dict[str, Any]
        if action is ContractAction.TERMINATE:
            event_type = EVENT_TERMINATED
            payload = {
                "contractId": str(contract.pk),
                "cateringCompanyId": str(contract.catering_company_id),
                "clientCompanyId": str(contract.client_company_id),
                "terminatedAt": changed_at,
            }
        else:
            event_type = EVENT_PAUSED if action is ContractAction.PAUSE else EVENT_RESUMED
            payload = {
                "contractId": str(contract.pk),
                "previousStatus": previous,
                "newStatus": new_status,
                "changedAt": changed_at,
            }
        outbox_event_emit(
            event_type=event_type,
            aggregate_type=AGGREGATE_TYPE,
            aggregate_id=contract.pk,
            payload=payload,
            actor=actor,
        )
        if becomes_active:
            _generate_service_days_after_commit(contract.pk)
    return contract


def contract_pause(*, contract_id: uuid.UUID, actor: User | None) -> Contract:
    """ACTIVE → PAUSED; emits ``contract.paused``."""
    return _contract_transition(contract_id=contract_id, actor=actor, action=ContractAction.PAUSE)


def contract_resume(*, contract_id: uuid.UUID, actor: User | None) -> Contract:
    """PAUSED → ACTIVE (409 when the pair already has an ACTIVE contract); ``contract.resumed``;
    its days of the generation window are generated after the commit."""
    return _contract_transition(contract_id=contract_id, actor=actor, action=ContractAction.RESUME)


def contract_terminate(*, contract_id: uuid.UUID, actor: User | None) -> Contract:
    """ACTIVE or PAUSED → TERMINATED; emits ``contract.terminated``."""
    return _contract_transition(
        contract_id=contract_id, actor=actor, action=ContractAction.TERMINATE
    )


# --- terms ------------------------------------------------------------------------------------


def _term_json(field: str, value: Any) -> Any:
    if field in ("start_date", "end_date"):
        return _iso_date(value)
    if field == "price_per_service":
        return float(value)
    if field == "service_days":
        return list(value)
    return value


def contract_update_terms(
    *, contract_id: uuid.UUID, actor: User | None, data: Mapping[str, Any]
) -> Contract:
    """Change the terms of an ACTIVE or PAUSED contract; emits ``contract.updated``.

    ``data`` holds any of ``TERM_FIELDS`` and ``service_days`` (the weekdays, in the order
    the API returns them); the others stay. Platform staff only (the admin): the original
    has no route for it (``rules.terms_change_denial``). Checks: contract exists (404) →
    actor → not TERMINATED (400) → the terms as a whole, with the creation's texts: values
    ≥ 0, min ≤ max, a valid weekday set, endDate ≥ startDate (400) → the days ahead.

    The new terms apply from today (UTC) on: days already generated ahead that they no
    longer serve are deleted, unless one already carries a quantity (409, nothing changed);
    past days, and quantities confirmed under the old terms, stay as they are. An ACTIVE
    contract then gets the days of the generation window its new terms add, after the
    commit, as at creation. Nothing changed → nothing written, no event.
    """
    unknown = set(data) - {*TERM_FIELDS, "service_days"}
    if unknown:
        raise TypeError(f"contract_update_terms: unknown terms {sorted(unknown)}")
    with transaction.atomic():
        contract = (
            Contract.objects.select_for_update(of=("self",))
            .select_related("catering_company", "client_company")
            .filter(pk=contract_id)
            .first()
        )
        if contract is None:
            raise NotFound(rules.contract_not_found_message(contract_id))
        if actor is not None and (
            denial := rules.terms_change_denial(
                actor_company_id=actor.company_id, actor_is_staff=actor.is_staff
            )
        ):
            raise Forbidden(denial)
        if reason := rules.terms_change_error(contract.status):
            raise BadRequest(reason)

        before: dict[str, Any] = {field: getattr(contract, field) for field in TERM_FIELDS}
        before["service_days"] = list(contract.weekdays.values_list("day_of_week", flat=True))
        after = {**before, **data}
        after["service_days"] = list(after["service_days"])
        if errors := rules.terms_errors(
            start_date=after["start_date"],
            end_date=after["end_date"],
            price_per_service=after["price_per_service"],
            min_daily_quantity=after["min_daily_quantity"],
            max_daily_quantity=after["max_daily_quantity"],
            notice_period_hours=after["notice_period_hours"],
            service_days=after["service_days"],
        ):
            raise BadRequest(errors)
        changed = [
            field for field in (*TERM_FIELDS, "service_days") if after[field] != before[field]
        ]
        if not changed:
            return contract

        removed = _drop_days_off_schedule(contract, after)
        for field in TERM_FIELDS:
            setattr(contract, field, after[field])
        try:
            # The database's checks (min ≤ max, dates, price ≥ 0, column sizes) guard what
            # the rules above missed: a clean 400, not a 500.
            with transaction.atomic():
                contract.save(
                    update_fields=[f for f in changed if f in TERM_FIELDS] + ["updated_at"]
                )
                if "service_days" in changed:
                    contract.weekdays.all().delete()
                    ContractWeekday.objects.bulk_create(
                        [
                            ContractWeekday(contract=contract, day_of_week=day)
                            for day in after["service_days"]
                        ]
                    )
        except (IntegrityError, DataError) as exc:
            raise BadRequest("The new terms are outside what a contract can hold") from exc

        outbox_event_emit(
            event_type=EVENT_UPDATED,
            aggregate_type=AGGREGATE_TYPE,
            aggregate_id=contract.pk,
            payload={
                "contractId": str(contract.pk),
                "cateringCompanyId": str(contract.catering_company_id),
                "clientCompanyId": str(contract.client_company_id),
                "status": contract.status,
                "changedFields": [to_camel(field) for field in changed],
                "previous": {to_camel(f): _term_json(f, before[f]) for f in changed},
                **{to_camel(f): _term_json(f, after[f]) for f in (*TERM_FIELDS, "service_days")},
                "removedServiceDays": removed,
                "updatedAt": iso_ms(contract.updated_at),
            },
            actor=actor,
        )
        if contract.status == ContractStatus.ACTIVE:
            _generate_service_days_after_commit(contract.pk)
    return contract


def _drop_days_off_schedule(contract: Contract, terms: Mapping[str, Any]) -> int:
    # servicedays depends on contracts: imported at call time (see above).
    from servicedays.services import service_days_drop_off_schedule

    return service_days_drop_off_schedule(
        contract=contract,
        weekdays=terms["service_days"],
        start_date=terms["start_date"],
        end_date=terms["end_date"],
        from_date=today_utc(),
    )
