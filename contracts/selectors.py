"""Contract reads, always scoped to the acting company (fixed query counts)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import F, Q, QuerySet

from chefops.api.errors import Forbidden, NotFound
from companies.models import Company
from contracts import rules
from contracts.models import Contract, ContractWeekday


def _with_relations(qs: QuerySet[Contract]) -> QuerySet[Contract]:
    # Party names as plain columns of the same query: instantiating two Company objects per
    # contract cost more than the SQL on a page of hundreds.
    return qs.annotate(
        catering_name=F("catering_company__name"), client_name=F("client_company__name")
    )


def with_weekdays(contracts: Iterable[Contract]) -> list[Contract]:
    """Attach ``weekday_numbers`` (insertion order) to each contract with one query."""
    page = list(contracts)
    by_contract: dict[uuid.UUID, list[int]] = defaultdict(list)
    rows = (
        ContractWeekday.objects.filter(contract_id__in=[c.pk for c in page])
        .order_by("id")
        .values_list("contract_id", "day_of_week")
    )
    for contract_id, day in rows:
        by_contract[contract_id].append(day)
    for contract in page:
        contract.weekday_numbers = by_contract.get(contract.pk, [])  # type: ignore[attr-defined]
    return page


def contract_list(*, company: Company, status: str | None = None) -> QuerySet[Contract]:
    """The company's contracts as caterer or as client, every status unless ``status``."""
    qs = Contract.objects.filter(Q(catering_company=company) | Q(client_company=company))
    if status is not None:
        qs = qs.filter(status=status)
    return _with_relations(qs).order_by("created_at", "id")


def contract_get(*, company: Company, contract_id: uuid.UUID) -> Contract:
    """One contract for a party of it: 404 when unknown, 403 for anyone else (reference C3)."""
    contract = _with_relations(Contract.objects.filter(pk=contract_id)).first()
    if contract is not None:
        contract = with_weekdays([contract])[0]
    if contract is None:
        raise NotFound(rules.contract_not_found_message(contract_id))
    if not rules.is_party(
        company.pk,
        catering_company_id=contract.catering_company_id,
        client_company_id=contract.client_company_id,
    ):
        raise Forbidden(rules.VIEW_FORBIDDEN_MESSAGE)
    return contract


def contract_for_output(*, contract_id: uuid.UUID) -> Contract:
    """A contract a service just wrote, reloaded with what the output serializer reads."""
    return with_weekdays([_with_relations(Contract.objects.filter(pk=contract_id)).get()])[0]
