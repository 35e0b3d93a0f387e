"""Prepared statements (chefops/settings.py, issue #18): on a direct PostgreSQL connection a
statement run DB_PREPARE_THRESHOLD times is prepared and answers as before, data written after
the PREPARE included; behind PgBouncer nothing is ever prepared."""

from __future__ import annotations

import copy
import uuid
from datetime import date
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import NotSupportedError, connection, connections

from chefops.db.postgresql.base import DatabaseWrapper
from contracts.models import Contract
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

RANGE = "from=2026-01-05&to=2026-01-09"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def contract(cast: Any) -> Contract:
    return make_contract(cast)


def _prepared_statements() -> list[str]:
    """The protocol-level prepared statements of this connection's server session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


def _days(contract: Contract) -> None:
    for day in range(5, 10):
        make_day(contract, date(2026, 1, day), expected_quantity=10 + day)


def _reads(api: Any, contract: Contract, times: int) -> list[bytes]:
    url = f"/api/contracts/{contract.pk}/service-days?{RANGE}"
    responses = [api.get(url) for _ in range(times)]
    assert {res.status_code for res in responses} == {200}
    return [res.content for res in responses]


def test_a_hot_read_is_prepared_and_answers_as_before(cast: Any, contract: Contract) -> None:
    if settings.DB_PGBOUNCER:
        pytest.skip("behind PgBouncer nothing is prepared (the next test)")
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    _days(contract)
    api = cast.api(cast.client.employee)
    threshold = settings.DB_PREPARE_THRESHOLD
    assert not any("servicedays_serviceday" in sql for sql in _prepared_statements())

    before, after = _reads(api, contract, max(threshold, 1)), _reads(api, contract, 3)

    range_statements = [sql for sql in _prepared_statements() if "servicedays_serviceday" in sql]
    assert range_statements, "the range read was not prepared after the threshold"
    assert all("$1" in sql for sql in range_statements)  # parameters bound, not inlined
    assert len(set(before + after)) == 1  # the same body, prepared or not

    # A write after the PREPARE shows in the next execution of the prepared statement.
    ServiceDay.objects.filter(contract=contract, service_date=date(2026, 1, 7)).update(
        served_quantity=12, status=ServiceDayStatus.CONFIRMED
    )
    [changed] = _reads(api, contract, 1)
    assert changed != after[0]
    assert b'"servedQuantity":12' in changed and b'"status":"CONFIRMED"' in changed


def test_nothing_is_prepared_behind_pgbouncer(cast: Any, contract: Contract) -> None:
    if not settings.DB_PGBOUNCER:
        pytest.skip("only in a run with DB_PGBOUNCER=true (bin/ci.sh's PgBouncer step)")
    _days(contract)
    api = cast.api(cast.client.employee)
    bodies = _reads(api, contract, settings.DB_PREPARE_THRESHOLD + 3)
    assert len(set(bodies)) == 1
    connection.ensure_connection()
    assert connection.connection.prepare_threshold is None
    assert _prepared_statements() == []


def _stale_statement_costs_one_failure(wrapper: Any) -> None:
    """Prepare a statement on ``wrapper``, change a column type it returns from another
    connection, and check that one execution fails and the next request's connection
    answers."""
    table = f"zz_stale_plan_{uuid.uuid4().hex[:12]}"
    query = f"SELECT id, name FROM {table} WHERE id = %s"
    params = dict(connection.get_connection_params())
    for own in ("cursor_factory", "prepare_threshold", "pool"):
        params.pop(own, None)
    with psycopg.connect(**params, autocommit=True) as migrator:
        migrator.execute(f"CREATE TABLE {table} (id integer, name text)")
        migrator.execute(f"INSERT INTO {table} VALUES (1, 'one')")
        try:
            for _ in range(settings.DB_PREPARE_THRESHOLD + 1):
                with wrapper.cursor() as cursor:
                    cursor.execute(query, [1])
                    assert cursor.fetchall() == [(1, "one")]
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
                assert any(table in row[0] for row in cursor.fetchall())

            migrator.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE bigint")
            with pytest.raises(NotSupportedError), wrapper.cursor() as cursor:
                cursor.execute(query, [1])
            assert wrapper.stale_prepared_statements is True

            # What Django runs after each request and Celery task (close_old_connections).
            wrapper.close_if_unusable_or_obsolete()
            assert wrapper.connection is None
            with wrapper.cursor() as cursor:
                cursor.execute(query, [1])
                assert cursor.fetchall() == [(1, "one")]
        finally:
            wrapper.close()
            migrator.execute(f"DROP TABLE {table}")


@pytest.mark.django_db(transaction=True)
def test_a_statement_gone_stale_under_a_migration_costs_one_failure() -> None:
    """A column's type changed by another connection (a deploy's migration while this
    release still runs) makes the prepared statement fail; the connection is replaced at the
    next request boundary instead of failing that statement for as long as it lives."""
    if settings.DB_PGBOUNCER:
        pytest.skip("behind PgBouncer nothing is prepared")
    _stale_statement_costs_one_failure(connections["default"])


@pytest.mark.django_db(transaction=True)
def test_a_pool_discards_the_connection_whose_statement_went_stale() -> None:
    """With DB_POOL the replaced connection must not go back to the pool (a pool of one:
    the next request would borrow the same connection and fail again)."""
    if settings.DB_PGBOUNCER:
        pytest.skip("behind PgBouncer nothing is prepared")
    pooled = copy.deepcopy(connections["default"].settings_dict)
    pooled["CONN_MAX_AGE"] = 0
    pooled["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 1, "timeout": 5}
    wrapper = DatabaseWrapper(pooled, alias=f"stale_pool_{uuid.uuid4().hex[:8]}")
    try:
        _stale_statement_costs_one_failure(wrapper)
    finally:
        wrapper.close_pool()
