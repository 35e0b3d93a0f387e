"""Contract reads, always scoped to the acting company (fixed query counts)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet

from chefops.api.errors import Forbidden, NotFound
from chefops.api.renderers import CamelList
from chefops.api.sqltext import VendorSql
from companies.models import Company
from contracts import rules
from contracts.models import Contract, ContractWeekday
from contracts.serializers import CONTRACT


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


# --- The list endpoint: one statement for the page, JSON-ready (chefops.api.sqltext) ---------

_CONTRACT = Contract._meta.db_table
_COMPANY = Company._meta.db_table
_WEEKDAY = ContractWeekday._meta.db_table
_PARTY = "(c.catering_company_id = %s OR c.client_company_id = %s)"


def _company_name(alias: str, company_id: str) -> str:
    return f"(SELECT {alias}.name FROM {_COMPANY} {alias} WHERE {alias}.id = {company_id})"  # noqa: S608


def _party_name(alias: str, company_id: str) -> str:
    """The name of a contract's party. The caller is a party of every contract it lists, so
    its own name comes as a parameter (``_list_params``) and only the other party's is looked
    up: one primary-key probe per row instead of two."""
    return f"CASE WHEN {company_id} = %s THEN %s ELSE {_company_name(alias, company_id)} END"


def _build_page_sql(with_status: bool) -> str:
    status = " AND c.status = %s" if with_status else ""
    postgres = connection.vendor == "postgresql"
    # The columns are ContractOutput's fields, in its order (contracts.serializers.CONTRACT).
    # PostgreSQL: the weekdays as an array of the same row (one query); SQLite: a second
    # query for the weekdays (no arrays). Party names as scalar subqueries, not joins:
    # PostgreSQL plans them in a tenth of the time and probes the primary key per row
    # instead of hashing the whole company table twice.
    columns = CONTRACT.select(
        "c",
        service_days=(
            f"ARRAY(SELECT w.day_of_week FROM {_WEEKDAY} w "  # noqa: S608 - model metadata
            "WHERE w.contract_id = c.id ORDER BY w.id)"
            if postgres
            else "NULL"
        ),
        catering_name=_party_name("cat", "c.catering_company_id"),
        client_name=_party_name("cli", "c.client_company_id"),
    )
    return f"""
SELECT {columns}
FROM {_CONTRACT} c
WHERE {_PARTY}{status}
ORDER BY c.created_at, c.id
LIMIT %s OFFSET %s
"""  # noqa: S608 - identifiers come from model metadata, values are parameters


_PAGE = {flag: VendorSql(lambda flag=flag: _build_page_sql(flag)) for flag in (False, True)}  # type: ignore[misc]
_COUNT_SQL = f"SELECT COUNT(*) FROM {_CONTRACT} c WHERE {_PARTY}"  # noqa: S608
_WEEKDAYS_SQL = (
    f"SELECT contract_id, day_of_week FROM {_WEEKDAY} "  # noqa: S608
    "WHERE contract_id IN ({ids}) ORDER BY id"
)


def _company_pk(company: Company) -> Any:
    meta: Any = Company._meta
    return meta.pk.get_db_prep_value(company.pk, connection)


def _list_params(company: Company, status: str | None) -> list[Any]:
    pk = _company_pk(company)
    return [pk, pk] if status is None else [pk, pk, status]


def contract_page_rows(
    *, company: Company, status: str | None, offset: int, limit: int
) -> CamelList:
    """Rows ``offset`` .. ``offset + limit`` of the company's contracts (as caterer or as
    client, every status unless ``status``; by creation, then id) as the contract objects of
    ``ContractOutput``, without making models: one query on PostgreSQL, two on SQLite (the
    weekdays of the page's contracts)."""
    with connection.cursor() as cursor:
        pk, name = _company_pk(company), company.name
        cursor.execute(
            _PAGE[status is not None].sql,
            [pk, name, pk, name, *_list_params(company, status), limit, offset],
        )
        rows = cursor.fetchall()
        if rows and connection.vendor != "postgresql":
            weekdays: dict[Any, list[int]] = defaultdict(list)
            cursor.execute(
                _WEEKDAYS_SQL.format(ids=", ".join(["%s"] * len(rows))), [row[0] for row in rows]
            )
            for contract_id, day in cursor.fetchall():
                weekdays[contract_id].append(day)
            at = CONTRACT.index("service_days")
            rows = [(*row[:at], weekdays.get(row[0], []), *row[at + 1 :]) for row in rows]
    return CamelList(map(CONTRACT.from_row(), rows))


def contract_count(*, company: Company, status: str | None) -> int:
    sql = _COUNT_SQL + (" AND c.status = %s" if status is not None else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, _list_params(company, status))
        row = cursor.fetchone()
    return int(row[0]) if row else 0


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
