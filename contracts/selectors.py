"""Contract reads, always scoped to the acting company (fixed query counts)."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet

from chefops.api.errors import Forbidden, NotFound
from companies.models import Company
from contracts import rules
from contracts.models import Contract


def _with_relations(qs: QuerySet[Contract]) -> QuerySet[Contract]:
    # Names for the output and the weekdays in one extra query, whatever the page size.
    return qs.select_related("catering_company", "client_company").prefetch_related("weekdays")


def contract_list(*, company: Company, status: str | None = None) -> QuerySet[Contract]:
    """The company's contracts as caterer or as client, every status unless ``status``."""
    qs = Contract.objects.filter(Q(catering_company=company) | Q(client_company=company))
    if status is not None:
        qs = qs.filter(status=status)
    return _with_relations(qs).order_by("created_at", "id")


def contract_get(*, company: Company, contract_id: uuid.UUID) -> Contract:
    """One contract for a party of it: 404 when unknown, 403 for anyone else (reference C3)."""
    contract = _with_relations(Contract.objects.filter(pk=contract_id)).first()
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
    return _with_relations(Contract.objects.filter(pk=contract_id)).get()
