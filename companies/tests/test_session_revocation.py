"""Access tokens die with their session (SPEC §2.3): logout, refresh-token reuse, password
change and reset, user deactivation. Every case over HTTP, with the principal cache off (the
session is checked in the principal's query) and on (the session's marker rides in the
principal's one MGET; Redis when REDIS_URL is set, the in-process cache otherwise).

Real transactions: the ``ended`` markers are written after the deleting transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from chefops.testing.factories import TEST_PASSWORD
from companies import principals
from companies.authentication import ALGORITHM, access_token_for
from companies.models import AuthSession, User
from companies.tests.utils import bearer, login, patch, post, run_outbox_handlers

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = "/api/auth/session-status"
NEW_PASSWORD = "a-much-better-secret-7"


@pytest.fixture(params=["cache-off", "cache-on"])
def principal_cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[bool]:
    on = request.param == "cache-on"
    settings.AUTH_CACHE_SECONDS = 300 if on else 0
    cache.clear()
    yield on
    cache.clear()


def signed_in(email: str, **body: Any) -> dict[str, Any]:
    res = login(email, **body)
    assert res.status_code == 200, res.content
    return dict(res.json())


def status(session: dict[str, Any]) -> int:
    return int(bearer(session["accessToken"]).get(PROBE).status_code)


def refresh(token: str) -> Any:
    return post(APIClient(), "/api/auth/refresh", {"refreshToken": token})


def test_logout_ends_that_session_only(cast: Any, principal_cache: bool) -> None:
    email = "techcorp.manager@example.com"
    mine, other = signed_in(email), signed_in(email)
    for _ in range(2):  # the second request is served from the cache when it is on
        assert (status(mine), status(other)) == (200, 200)
    res = post(
        bearer(mine["accessToken"]), "/api/auth/logout", {"refreshToken": mine["refreshToken"]}
    )
    assert res.status_code == 200
    assert (status(mine), status(other)) == (401, 200)


def test_refresh_token_reuse_ends_every_access_token_of_the_family(
    cast: Any, principal_cache: bool
) -> None:
    email = "delicias.employee@example.com"
    first = signed_in(email)
    elsewhere = signed_in(email)
    second = refresh(first["refreshToken"]).json()
    third = refresh(second["refreshToken"]).json()
    family = (first, second, third)
    assert [status(s) for s in family] == [200, 200, 200]  # one session, three access tokens
    # replayed after the grace window (REFRESH_REUSE_GRACE_SECONDS): the family is revoked
    later = timezone.now() + timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS + 5)
    with time_machine.travel(later, tick=False):
        assert refresh(first["refreshToken"]).status_code == 401
        assert [status(s) for s in family] == [401, 401, 401]
        assert status(elsewhere) == 200


def test_change_password_ends_every_session_of_the_user(cast: Any, principal_cache: bool) -> None:
    email = "startup.employee@example.com"
    caller, other = signed_in(email), signed_in(email, rememberMe=True)
    colleague = signed_in("startup.manager@example.com")
    assert (status(caller), status(other)) == (200, 200)
    res = post(
        bearer(caller["accessToken"]),
        "/api/auth/change-password",
        {
            "oldPassword": TEST_PASSWORD,
            "newPassword": NEW_PASSWORD,
            "passwordConfirmation": NEW_PASSWORD,
        },
    )
    assert (res.status_code, res.json()) == (200, {"message": "Password changed successfully"})
    # The caller's own session too (SPEC §2.3: change/reset revokes all of the user's sessions).
    assert (status(caller), status(other), status(colleague)) == (401, 401, 200)
    assert status(signed_in(email, password=NEW_PASSWORD)) == 200


def test_reset_password_ends_every_session_of_the_user(cast: Any, principal_cache: bool) -> None:
    from django.core import mail

    email = "sabores.manager@example.com"
    session = signed_in(email)
    assert status(session) == 200
    post(APIClient(), "/api/auth/forgot-password", {"email": email})
    run_outbox_handlers("auth.password_reset_requested")
    link = next(line for line in mail.outbox[-1].body.splitlines() if "token=" in line)
    res = post(
        APIClient(),
        "/api/auth/reset-password",
        {"token": link.split("token=")[1], "password": NEW_PASSWORD},
    )
    assert res.status_code == 200
    assert status(session) == 401


def test_a_deactivated_user_stays_signed_out_when_reactivated(
    cast: Any, principal_cache: bool
) -> None:
    email = "techcorp.employee@example.com"
    session = signed_in(email)
    assert status(session) == 200
    admin = cast.api(cast.client.admin)
    user = User.objects.get(email=email)
    assert patch(admin, f"/api/users/{user.pk}", {"isActive": False}).status_code == 200
    assert status(session) == 401
    assert patch(admin, f"/api/users/{user.pk}", {"isActive": True}).status_code == 200
    assert status(session) == 401  # its session was deleted with the deactivation
    assert status(signed_in(email)) == 200


def test_a_token_must_name_a_live_session_of_its_own_user(cast: Any, principal_cache: bool) -> None:
    user, other = cast.client.employee, cast.client.manager
    others_session = AuthSession.objects.create(
        user=other, expires_at=timezone.now() + timedelta(days=7)
    )
    for session_id in (uuid.uuid4(), others_session.pk):
        assert bearer(access_token_for(user, session_id=session_id)).get(PROBE).status_code == 401
    live = signed_in(user.email)
    claims = jwt.decode(live["accessToken"], settings.JWT_SECRET, algorithms=[ALGORITHM])
    for change in ({"sid": None}, {"sid": "not-a-uuid"}):
        forged = {key: value for key, value in {**claims, **change}.items() if value is not None}
        token = jwt.encode(forged, settings.JWT_SECRET, algorithm=ALGORITHM)
        assert bearer(token).get(PROBE).status_code == 401


# --- the cost of the check -------------------------------------------------------------------


class CacheCalls:
    """Records the calls made to the real cache (every call still goes through): with Redis
    each is one round trip. Calls a backend makes inside another (the in-process cache's
    ``get_many`` loops over ``get``) are not counted."""

    NAMES = ("get", "get_many", "set", "set_many", "add", "delete", "incr")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self._depth = 0
        for name in self.NAMES:
            monkeypatch.setattr(cache, name, self._counting(name, getattr(cache, name)))

    def _counting(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self._depth == 0:
                self.calls.append(name)
            self._depth += 1
            try:
                return real(*args, **kwargs)
            finally:
                self._depth -= 1

        return call


def test_a_cached_request_still_costs_one_round_trip_and_no_query(
    cast: Any, settings: Any, frozen_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.AUTH_CACHE_SECONDS = 300
    settings.READ_CACHE_SECONDS = 300
    session = signed_in("techcorp.manager@example.com")
    client = bearer(session["accessToken"])
    for _ in range(3):  # activity of the minute, principal, session marker, read entry
        assert client.get("/api/contracts").status_code == 200
        assert client.get(PROBE).status_code == 200
    counted = CacheCalls(monkeypatch)
    for url in ("/api/contracts", PROBE):  # a cached read, and a plain authenticated route
        counted.calls.clear()
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        assert counted.calls == ["get_many"], (url, counted.calls)
        assert len(queries.captured_queries) == 0, url


def test_an_ended_session_is_refused_from_the_cache(
    cast: Any, settings: Any, frozen_clock: Any
) -> None:
    settings.AUTH_CACHE_SECONDS = 300
    session = signed_in("techcorp.manager@example.com")
    client = bearer(session["accessToken"])
    assert client.get(PROBE).status_code == 200
    assert (
        post(client, "/api/auth/logout", {"refreshToken": session["refreshToken"]}).status_code
        == 200
    )
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PROBE).status_code == 401
    assert len(queries.captured_queries) == 0


def test_without_the_cache_the_session_costs_no_extra_query(
    cast: Any, settings: Any, frozen_clock: Any
) -> None:
    settings.AUTH_CACHE_SECONDS = 0
    client = bearer(signed_in("techcorp.manager@example.com")["accessToken"])
    assert client.get(PROBE).status_code == 200  # the minute's activity write
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PROBE).status_code == 200
    [query] = queries.captured_queries  # user, company and session in one statement
    assert "companies_authsession" in query["sql"] and "companies_user" in query["sql"]


@pytest.mark.parametrize("check", ["_session_alive", "load_principal"])
@pytest.mark.usefixtures("cache_answers_unchecked")  # served after it ended, on purpose
def test_a_session_ended_while_it_is_being_checked_is_refused_next(
    cast: Any, settings: Any, frozen_clock: Any, monkeypatch: pytest.MonkeyPatch, check: str
) -> None:
    """The request that checked the session just before it ended is served; the ``live``
    marker it stores afterwards cannot outlive the ``ended`` one. The session's marker has
    expired; the principal entry is still cached (the session alone is checked) or stale
    (checked in the principal's query)."""
    settings.AUTH_CACHE_SECONDS = 300
    email = "techcorp.manager@example.com"
    session = signed_in(email)
    client = bearer(session["accessToken"])
    for _ in range(2):  # the minute's activity write, then everything cached
        assert client.get(PROBE).status_code == 200
    sid = jwt.decode(session["accessToken"], settings.JWT_SECRET, algorithms=[ALGORITHM])["sid"]
    cache.delete(f"auth:s:{sid}")  # expired
    if check == "load_principal":
        principals.invalidate_user(User.objects.get(email=email).pk)
    real = getattr(principals, check)

    def check_then_logout(*args: Any, **kwargs: Any) -> Any:
        answer = real(*args, **kwargs)  # the session is alive at this point
        monkeypatch.setattr(principals, check, real)
        AuthSession.objects.filter(user__email=email).delete()  # commits: ``ended`` written
        return answer

    monkeypatch.setattr(principals, check, check_then_logout)
    assert client.get(PROBE).status_code == 200  # checked before the session ended
    assert getattr(principals, check) is real  # the interleaving did happen
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PROBE).status_code == 401
    assert len(queries.captured_queries) == 0  # refused by the cache's ``ended``
