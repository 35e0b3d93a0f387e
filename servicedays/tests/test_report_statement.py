"""The weekly report's one statement on PostgreSQL reads the two company names once per
report, not once per day row as correlated subqueries in its SELECT list did (issue #18,
docs/benchmarks.md: 43 buffers touched per report of five days, now 13)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection

from chefops.testing.factories import CateringFactory, ClientFactory, ContractFactory
from servicedays import selectors
from servicedays.models import ServiceDay


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_report_reads_each_company_name_once() -> None:
    caterer, client = CateringFactory.create(name="Cuisine A"), ClientFactory.create(name="B Corp")
    contract = ContractFactory.create(catering_company=caterer, client_company=client)
    monday = date(2026, 11, 30)
    for offset in range(5):  # Monday to Friday, across the end of the month
        ServiceDay.objects.create(contract=contract, service_date=monday + timedelta(days=offset))
    params: list[Any] = [monday, monday + timedelta(days=6), contract.pk]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + selectors._REPORT_SQL, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(selectors._REPORT_SQL, params)
        rows = cursor.fetchall()

    assert len(rows) == 5
    assert {row[3:5] for row in rows} == {("Cuisine A", "B Corp")}
    assert "SubPlan" not in plan, plan
    company_scans = re.findall(r"on companies_company \w+ \(actual rows=\d+ loops=(\d+)\)", plan)
    assert company_scans == ["1", "1"], plan
