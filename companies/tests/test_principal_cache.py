"""The principal cache (companies/principals.py): a cached user and company, and every change
that must show on the next request.

Runs in real transactions (tokens are bumped on commit) against the configured cache: Redis
when REDIS_URL is set (the CI's first run), the in-process cache otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chefops import readcache
from chefops.testing.factories import TEST_PASSWORD
from companies import principals
from companies.models import CompanyStatus, Role, User
from companies.tests.utils import login, post

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = "/api/auth/session-status"
NOW = datetime(2026, 1, 21, 9, 0, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def principal_cache(settings: Any) -> Iterator[None]:
    settings.AUTH_CACHE_SECONDS = 300
    cache.clear()
    # a fixed clock: session activity is written once per minute, and bumps the user
    with time_machine.travel(NOW, tick=False):
        yield
    cache.clear()


def user_queries(api: Any, url: str = PROBE) -> tuple[int, int]:
    """(the status of a GET, how many statements read the users table)."""
    with CaptureQueriesContext(connection) as queries:
        status = api.get(url).status_code
    return status, sum(1 for q in queries.captured_queries if "companies_user" in q["sql"])


def test_the_second_request_reads_no_user_row(cast: Any) -> None:
    api = cast.api(cast.client.employee)
    assert api.get(PROBE).status_code == 200  # this minute's activity write happens here
    assert user_queries(api) == (200, 1)  # the write bumped the user: read once more
    for _ in range(3):
        assert user_queries(api) == (200, 0)


def test_deactivating_the_user_or_the_company_refuses_the_next_request(cast: Any) -> None:
    user = cast.client.employee
    api = cast.api(user)
    for _ in range(3):
        assert api.get(PROBE).status_code == 200
    user.is_active = False
    user.save()
    assert api.get(PROBE).status_code == 401
    user.is_active = True
    user.save()
    assert api.get(PROBE).status_code == 200

    company = cast.client.company
    colleague = cast.api(cast.client.manager)
    assert colleague.get(PROBE).status_code == 200
    company.status = CompanyStatus.INACTIVE
    company.save()
    assert api.get(PROBE).status_code == 401
    assert colleague.get(PROBE).status_code == 401
    # another company's users stay cached and served
    other = cast.api(cast.catering.employee)
    other.get(PROBE)  # records the minute's activity (a bump)
    other.get(PROBE)  # caches the principal
    assert user_queries(other) == (200, 0)


def test_a_password_reset_refuses_older_tokens_at_once(cast: Any) -> None:
    token = login("techcorp.employee@example.com").json()["accessToken"]
    api = cast.api()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get(PROBE).status_code == 200
    user = User.objects.get(email="techcorp.employee@example.com")
    with time_machine.travel(timezone.now() + timedelta(seconds=2), tick=False):
        user.tokens_valid_after = timezone.now()
        user.save()
        assert api.get(PROBE).status_code == 401


def test_role_and_company_changes_show_in_the_loaded_principal(cast: Any) -> None:
    user = cast.client.employee
    company = cast.client.company
    first = principals.principal(user.pk, str(company.pk))
    assert first is not None and first.role == Role.EMPLOYEE
    with CaptureQueriesContext(connection) as queries:
        cached = principals.principal(user.pk, str(company.pk))
    assert len(queries.captured_queries) == 0
    assert cached is not None and cached.company is not None
    assert (cached.pk, cached.company.name) == (user.pk, company.name)
    user.role = Role.ADMIN
    user.save()
    again = principals.principal(user.pk, str(company.pk))
    assert again is not None and again.role == Role.ADMIN
    company.name = "TechCorp Renamed"
    company.save()
    renamed = principals.principal(user.pk, str(company.pk))
    assert renamed is not None and renamed.company is not None
    assert renamed.company.name == "TechCorp Renamed"


def test_a_user_moved_to_another_company_is_read_from_the_database(cast: Any) -> None:
    user = cast.client.employee
    old_company = user.company
    api = cast.api(user)  # its token names the old company
    api.get(PROBE)
    user.company = cast.other_client.company
    user.save()
    loaded = principals.principal(user.pk, str(old_company.pk))
    assert loaded is not None and loaded.company_id == cast.other_client.company.pk
    with CaptureQueriesContext(connection) as queries:
        principals.principal(user.pk, str(old_company.pk))
    assert len(queries.captured_queries) == 1  # never cached under the old company's claim


def test_restores_and_the_activity_update_invalidate(cast: Any) -> None:
    user = cast.catering.employee
    company_id = str(user.company_id)
    principals.principal(user.pk, company_id)
    principals.invalidate_all()  # what restore and restore_table call
    with CaptureQueriesContext(connection) as queries:
        principals.principal(user.pk, company_id)
    assert len(queries.captured_queries) == 1
    # a queryset update sends no signal: the activity bookkeeping bumps the user itself
    api = cast.api(user)
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=5)
    with time_machine.travel(start, tick=False):
        first = api.get(PROBE).json()["lastActivityAt"]
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        second = api.get(PROBE).json()["lastActivityAt"]
        third = api.get(PROBE).json()["lastActivityAt"]
    assert first != second == third


def test_malformed_claims_and_cache_outages_fall_back_to_the_query(
    cast: Any, monkeypatch: Any
) -> None:
    user = cast.client.employee
    for claim in (None, "not-a-uuid"):
        loaded = principals.principal(user.pk, claim)
        assert loaded is not None and loaded.pk == user.pk

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", unavailable)
    api = cast.api(user)
    assert api.get(PROBE).status_code == 200


def test_the_cache_never_holds_a_password_hash_and_passwords_still_check(cast: Any) -> None:
    user = cast.client.employee
    api = cast.api(user)
    api.get(PROBE)
    api.get(PROBE)  # cached now
    entry = cache.get(f"auth:p:{readcache.release()}:{user.pk}")
    assert entry is not None
    stored = repr(entry)
    assert user.password and user.password not in stored and "argon2" not in stored
    loaded = principals.principal(user.pk, str(user.company_id))
    assert loaded is not None and "password" in loaded.get_deferred_fields()
    assert loaded.check_password(TEST_PASSWORD)  # loads the hash from the database
    new = "a-much-better-secret-7"
    res = post(
        api,
        "/api/auth/change-password",
        {"oldPassword": TEST_PASSWORD, "newPassword": new, "passwordConfirmation": new},
    )
    assert res.status_code == 200, res.content
    assert login(user.email, new).status_code == 200
    assert login(user.email).status_code == 401
