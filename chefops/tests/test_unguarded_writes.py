"""Unguarded writes (chefops/cachewrites.py): a bare ``QuerySet.update()``, ``delete()``,
``bulk_create()``/``bulk_update()``, a model ``delete()`` or a raw SQL write through the helper,
on each model whose rows feed a cached read, with no invalidation call anywhere: the next
read through the API, answered with both caches on, equals the one computed without them.

Real transactions (the bumps happen on commit), against the configured cache: Redis when
REDIS_URL is set, the in-process cache otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.cache import cache, caches
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from chefops import cachewrites, readcache
from companies.models import Company, CompanyStatus, User
from contracts.models import Contract, ContractStatus, ContractWeekday
from servicedays.models import ServiceDay, ServiceDayStatus
from servicedays.tests.helpers import make_contract, make_day

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 1, 21, 9, 0, tzinfo=UTC)  # a Wednesday
LIST = "/api/contracts"
FINANCE = "/api/contracts/finance-metrics"


@pytest.fixture(autouse=True)
def caches_on(settings: Any) -> Iterator[None]:
    settings.READ_CACHE_SECONDS = 300
    settings.AUTH_CACHE_SECONDS = 300
    with time_machine.travel(NOW, tick=False):
        yield


def days_url(contract: Contract) -> str:
    return f"/api/contracts/{contract.pk}/service-days?from=2026-01-19&to=2026-01-30"


def get(cast: Any, url: str, user: Any = None) -> tuple[int, Any, int]:
    """(status, body, the queries it ran besides authentication) with the caches on."""
    api = cast.api(user or cast.client.employee)
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    auth = ("companies_user", "companies_authsession")  # a new session per cast.api()
    data = [q for q in queries.captured_queries if not any(t in q["sql"] for t in auth)]
    return response.status_code, response.json(), len(data)


def cached(cast: Any, url: str, user: Any = None) -> Any:
    """Read ``url`` until it is served from the cache (no data query); its body."""
    get(cast, url, user)
    status, body, ran = get(cast, url, user)
    assert (status, ran) == (200, 0), (url, status, ran)
    return body


def assert_fresh(cast: Any, url: str, user: Any = None) -> Any:
    """The read with the caches on equals the one computed without them; its body."""
    status, body, _ran = get(cast, url, user)
    with override_settings(READ_CACHE_SECONDS=0, AUTH_CACHE_SECONDS=0):
        uncached = get(cast, url, user)
    assert (status, body) == uncached[:2], url
    return body


def row(body: Any, contract: Contract) -> Any:
    return next(item for item in body if item["id"] == str(contract.pk))


# --- companies --------------------------------------------------------------------------------


@pytest.mark.parametrize("pinned", [True, False], ids=["by-pk", "by-other-filter"])
def test_a_company_update_shows_in_its_partners_reads(cast: Any, pinned: bool) -> None:
    contract = make_contract(cast)
    caterer = cast.catering.company
    assert row(cached(cast, LIST), contract)["cateringName"] == caterer.name
    rows = (
        Company.objects.filter(pk=caterer.pk)
        if pinned
        else Company.objects.filter(email=caterer.email)
    )
    assert rows.update(name="Renamed By Update") == 1
    assert row(assert_fresh(cast, LIST), contract)["cateringName"] == "Renamed By Update"


@pytest.mark.parametrize("write", ["update", "bulk_update"])
def test_a_company_deactivated_by_a_bulk_write_refuses_its_users(cast: Any, write: str) -> None:
    cached(cast, LIST, cast.client.employee)  # the principal is cached too
    company = Company.objects.get(pk=cast.client.company.pk)
    if write == "update":
        Company.objects.filter(pk=company.pk).update(status=CompanyStatus.INACTIVE)
    else:
        company.status = CompanyStatus.INACTIVE
        Company.objects.bulk_update([company], ["status"])
    assert get(cast, LIST, cast.client.employee)[0] == 401
    assert get(cast, LIST, cast.catering.employee)[0] == 200  # another company's users


# --- users ------------------------------------------------------------------------------------


@pytest.mark.parametrize("write", ["update-by-pk", "update-by-email", "bulk_update", "delete"])
def test_a_user_deactivated_by_a_bulk_write_is_refused_at_once(cast: Any, write: str) -> None:
    user = cast.client.employee
    api = cast.api(user)
    assert api.get(LIST).status_code == 200
    assert api.get(LIST).status_code == 200  # principal (and read) from the cache
    if write == "update-by-pk":
        User.objects.filter(pk=user.pk).update(is_active=False)
    elif write == "update-by-email":
        User.objects.filter(email=user.email).update(is_active=False)
    elif write == "bulk_update":
        user.is_active = False
        User.objects.bulk_update([user], ["is_active"])
    else:
        User.objects.filter(pk=user.pk).delete()
    assert api.get(LIST).status_code == 401
    assert cast.api(cast.client.manager).get(LIST).status_code == 200


# --- contracts --------------------------------------------------------------------------------


@pytest.mark.parametrize("write", ["update-by-pk", "update-by-status", "bulk_update", "delete"])
def test_a_contract_bulk_write_shows_in_both_parties_lists(cast: Any, write: str) -> None:
    contract = make_contract(cast)
    other = make_contract(cast, client_company=cast.other_client.company)
    for user in (cast.client.employee, cast.catering.employee, cast.other_client.employee):
        cached(cast, LIST, user)
    with transaction.atomic():  # a write inside a block: bumped when it commits
        if write == "update-by-pk":
            Contract.objects.filter(pk=contract.pk).update(price_per_service=Decimal("99.00"))
        elif write == "update-by-status":
            Contract.objects.filter(status=ContractStatus.ACTIVE).update(
                price_per_service=Decimal("99.00")
            )
        elif write == "bulk_update":
            contract.price_per_service = Decimal("99.00")
            Contract.objects.bulk_update([contract], ["price_per_service"])
        else:
            Contract.objects.filter(pk=contract.pk).delete()
    for user in (cast.client.employee, cast.catering.employee):
        body = assert_fresh(cast, LIST, user)
        if write == "delete":
            assert str(contract.pk) not in {item["id"] for item in body}
        else:
            assert row(body, contract)["pricePerService"] == 99
    # a pinned write leaves the other tenant's list cached
    _status, _body, ran = get(cast, LIST, cast.other_client.employee)
    if write == "update-by-status":
        assert ran >= 1  # which contracts match is unknown before the write: every tenant
    else:
        assert ran == 0
    assert_fresh(cast, LIST, cast.other_client.employee)
    assert Contract.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize(
    "write", ["update-by-pk", "delete-by-contract", "delete-by-weekday", "bulk_create", "model"]
)
def test_a_weekday_bulk_write_shows_in_the_contract_lists(cast: Any, write: str) -> None:
    contract = make_contract(cast, weekdays=[1, 3])
    before = row(cached(cast, LIST), contract)
    cached(cast, LIST, cast.catering.employee)
    monday = ContractWeekday.objects.get(contract=contract, day_of_week=1)
    if write == "update-by-pk":
        ContractWeekday.objects.filter(pk=monday.pk).update(day_of_week=2)
    elif write == "delete-by-contract":
        contract.weekdays.filter(day_of_week=1).delete()
    elif write == "delete-by-weekday":
        ContractWeekday.objects.filter(day_of_week=1).delete()
    elif write == "bulk_create":
        ContractWeekday.objects.bulk_create([ContractWeekday(contract=contract, day_of_week=5)])
    else:
        monday.delete()
    for user in (cast.client.employee, cast.catering.employee):
        assert row(assert_fresh(cast, LIST, user), contract) != before


# --- service days -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        "update-by-pk",
        "update-by-contract",
        "update-by-status",
        "bulk_update",
        "bulk_create",
        "delete-by-pk",
        "delete-by-date",
        "model-delete",
        "raw-sql",
    ],
)
def test_a_service_day_bulk_write_shows_in_the_range_and_the_metrics(cast: Any, write: str) -> None:
    contract = make_contract(cast)
    day = make_day(contract, date(2026, 1, 19), expected_quantity=12)
    url = days_url(contract)
    before = cached(cast, url)
    finance = cached(cast, FINANCE, cast.catering.admin)
    if write == "update-by-pk":
        ServiceDay.objects.filter(pk=day.pk).update(expected_quantity=30)
    elif write == "update-by-contract":
        ServiceDay.objects.filter(contract=contract).update(expected_quantity=30)
    elif write == "update-by-status":
        ServiceDay.objects.filter(status=ServiceDayStatus.PENDING).update(expected_quantity=30)
    elif write == "bulk_update":
        day.expected_quantity = 30
        ServiceDay.objects.bulk_update([day], ["expected_quantity"])
    elif write == "bulk_create":
        ServiceDay.objects.bulk_create(
            [ServiceDay(contract_id=contract.pk, service_date=date(2026, 1, 21))]
        )
    elif write == "delete-by-pk":
        ServiceDay.objects.filter(pk=day.pk).delete()
    elif write == "delete-by-date":
        ServiceDay.objects.filter(service_date=day.service_date).delete()
    elif write == "model-delete":
        day.delete()
    else:
        table = ServiceDay._meta.db_table
        cachewrites.execute(
            f"UPDATE {table} SET expected_quantity = %s",
            [30],
            writes=[ServiceDay],
        )
    assert assert_fresh(cast, url) != before
    assert assert_fresh(cast, FINANCE, cast.catering.admin) != finance


def test_a_service_day_write_leaves_the_other_contracts_cached(cast: Any) -> None:
    contract = make_contract(cast)
    other = make_contract(cast, client_company=cast.other_client.company)
    day = make_day(contract, date(2026, 1, 19))
    make_day(other, date(2026, 1, 19))
    cached(cast, days_url(contract))
    cached(cast, days_url(other), cast.other_client.employee)
    ServiceDay.objects.filter(pk=day.pk).update(expected_quantity=30)
    assert get(cast, days_url(contract))[2] >= 1
    assert get(cast, days_url(other), cast.other_client.employee)[2] == 0


# --- the writer's settings, and a failed bump ---------------------------------------------------


def test_a_write_bumps_with_the_writers_caches_off_when_a_shared_cache_is_configured(
    cast: Any, settings: Any
) -> None:
    contract = make_contract(cast)
    cached(cast, LIST)
    tenant = readcache.tenant_scope(cast.client.company.pk)
    token = cache.get(tenant)
    assert token is not None
    settings.READ_CACHE_SECONDS = settings.AUTH_CACHE_SECONDS = 0
    settings.CACHE_URL = settings.CACHE_URL or "redis://shared.example:6379/1"  # others read it
    assert cachewrites.active()
    Contract.objects.filter(pk=contract.pk).update(price_per_service=Decimal("42.00"))
    assert cache.get(tenant) not in (None, token)
    # Without a shared cache and with its own caches off, a process has nobody to tell.
    settings.CACHE_URL = ""
    assert not cachewrites.active()


def test_a_failed_bump_is_logged_and_sent_again_with_the_next_one(
    cast: Any, monkeypatch: Any, caplog: Any
) -> None:
    contract = make_contract(cast)
    cached(cast, LIST)
    tenant = readcache.tenant_scope(cast.client.company.pk)
    token = cache.get(tenant)
    backend = caches["default"]
    real_set_many = backend.set_many
    attempts: list[int] = []
    outage = [True]

    def down(*args: Any, **kwargs: Any) -> Any:
        if not outage:
            return real_set_many(*args, **kwargs)
        attempts.append(1)
        raise ConnectionError("cache down")

    monkeypatch.setattr(backend, "set_many", down)
    monkeypatch.setattr(cachewrites, "_BUMP_BACKOFF", (0, 0))
    with caplog.at_level(logging.ERROR, logger="chefops.cachewrites"):
        Contract.objects.filter(pk=contract.pk).update(price_per_service=Decimal("42.00"))
    assert len(attempts) == cachewrites.BUMP_ATTEMPTS
    assert "cache invalidation failed" in caplog.text and tenant in caplog.text
    assert cache.get(tenant) == token  # stale until the entries expire, or the next bump
    outage.clear()
    User.objects.filter(pk=cast.catering.employee.pk).update(name="Someone")  # any bump
    assert cache.get(tenant) != token
    assert not cachewrites._unsent
    assert row(assert_fresh(cast, LIST), contract)["pricePerService"] == 42


def test_a_write_that_bypasses_the_data_layer_fails_the_test_that_makes_it(
    cast: Any, stale_cache_answers: list[str]
) -> None:
    """The suite's check (conftest.py): every answer a test gets from the caches is compared
    with a fresh computation, so a raw cursor write (no helper) is caught at the next read."""
    contract = make_contract(cast)
    api = cast.api(cast.client.employee)
    assert api.get(LIST).status_code == 200
    assert api.get(LIST).status_code == 200  # a hit, checked and fresh
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Contract._meta.db_table} SET price_per_service = %s WHERE id = %s",
            [Decimal("77.00"), contract.pk.hex if connection.vendor == "sqlite" else contract.pk],
        )
    res = api.get(LIST)
    assert res.status_code == 200
    assert row(res.json(), contract)["pricePerService"] == 77  # served the fresh answer
    assert len(stale_cache_answers) == 1  # and the test fails at its end
    assert stale_cache_answers[0].startswith("stale cached read")
    stale_cache_answers.clear()  # (this one made the bypass on purpose)
