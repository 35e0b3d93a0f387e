"""The contract list's page statement on PostgreSQL reads each contract's weekdays through the
covering index (contracts.0002): from the index alone and already in insertion order, not
the weekday table's heap and a sort per contract (issue #18, docs/benchmarks.md)."""

from __future__ import annotations

import pytest
from django.db import connection

from chefops.testing.factories import CateringFactory, ContractFactory
from contracts import selectors


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_page_reads_the_weekdays_from_the_covering_index() -> None:
    caterer = CateringFactory.create()
    for days in ([5, 1, 3], [7], [2, 4]):
        ContractFactory.create(catering_company=caterer, weekdays=days)
    pk = selectors._company_pk(caterer)
    params = [pk, caterer.name, pk, caterer.name, pk, pk, 101, 0]
    with connection.cursor() as cursor:
        # A test's tables are a few rows: a sequential or bitmap scan would win on cost there.
        # With those off, the choice left is between the indexes on the contract column.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + selectors._PAGE[False].sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(selectors._PAGE[False].sql, params)
        at = selectors.CONTRACT.index("service_days")
        listed: list[list[int]] = [row[at] for row in cursor.fetchall()]

    subplan = plan[plan.index("SubPlan") :]
    assert "contractweekday_cov" in subplan.split("SubPlan")[1], plan
    assert "Sort" not in subplan.split("SubPlan")[1], plan
    # Each contract's weekdays in insertion order (the contracts' own order is the list's).
    assert sorted(tuple(days) for days in listed) == [(2, 4), (5, 1, 3), (7,)]
