"""Several tabs refresh with one token at once (SPEC §2.3, REFRESH_REUSE_GRACE_SECONDS): a spent
refresh token presented again within the grace window of its rotation gets a pair of the same
session; outside it, or once the session ended, it is reuse and revokes the family."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from chefops.testing.factories import TEST_PASSWORD
from companies import rules
from companies.models import AuthSession, RefreshToken
from companies.tests.utils import bearer, error, login, post

pytestmark = pytest.mark.django_db
GRACE = 30
REVOKED = (401, "Invalid or expired refresh token")
EMAIL = "techcorp@example.com"


def refresh(token: str, client: APIClient | None = None) -> Any:
    return post(client or APIClient(), "/api/auth/refresh", {"refreshToken": token})


@pytest.fixture(autouse=True)
def grace(settings: Any) -> None:
    settings.REFRESH_REUSE_GRACE_SECONDS = GRACE


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as t:
        yield t


def sessions_of(email: str) -> int:
    return AuthSession.objects.filter(user__email=email).count()


def test_the_rule_is_a_closed_window_from_the_rotation() -> None:
    rotated = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    at = lambda seconds: rotated + timedelta(seconds=seconds)  # noqa: E731
    assert rules.refresh_replay_is_graced(rotated_at=rotated, now=at(0), grace_seconds=30)
    assert rules.refresh_replay_is_graced(rotated_at=rotated, now=at(30), grace_seconds=30)
    assert not rules.refresh_replay_is_graced(rotated_at=rotated, now=at(30.001), grace_seconds=30)
    assert not rules.refresh_replay_is_graced(rotated_at=rotated, now=at(-1), grace_seconds=30)
    assert not rules.refresh_replay_is_graced(rotated_at=rotated, now=at(1), grace_seconds=0)


def test_a_replay_within_the_window_gets_a_pair_of_the_same_session(cast: Any, clock: Any) -> None:
    token = login(EMAIL).json()["refreshToken"]
    first_tab = refresh(token)
    clock.shift(timedelta(seconds=GRACE))  # the last instant of the window
    second_tab = refresh(token)
    assert first_tab.status_code == second_tab.status_code == 200
    pairs = [first_tab.json(), second_tab.json()]
    assert pairs[0]["refreshToken"] != pairs[1]["refreshToken"]
    assert sessions_of(EMAIL) == 1
    # Both tabs go on: their access tokens work, and each refreshes its own token later.
    clock.shift(timedelta(minutes=10))
    for pair in pairs:
        assert bearer(pair["accessToken"]).get("/api/users").status_code == 200
        assert refresh(pair["refreshToken"]).status_code == 200
    assert sessions_of(EMAIL) == 1


def test_a_replay_after_the_window_revokes_the_family(cast: Any, clock: Any) -> None:
    token = login(EMAIL).json()["refreshToken"]
    tab = refresh(token).json()
    clock.shift(timedelta(seconds=GRACE, milliseconds=1))
    assert error(refresh(token)) == REVOKED
    assert sessions_of(EMAIL) == 0
    assert error(refresh(tab["refreshToken"])) == REVOKED  # the live token died with it
    assert bearer(tab["accessToken"]).get("/api/users").status_code == 401


def test_the_window_does_not_move_with_graced_replays(cast: Any, clock: Any) -> None:
    token = login(EMAIL).json()["refreshToken"]
    assert refresh(token).status_code == 200
    for _ in range(3):  # replays every 10 s: each graced, none extends the window
        clock.shift(timedelta(seconds=10))
        assert refresh(token).status_code == 200
    clock.shift(timedelta(seconds=1))  # 31 s after the rotation
    assert error(refresh(token)) == REVOKED
    assert sessions_of(EMAIL) == 0


def test_a_replay_after_logout_fails_even_within_the_window(cast: Any, clock: Any) -> None:
    tokens = login(EMAIL).json()
    tab = refresh(tokens["refreshToken"]).json()
    res = post(
        bearer(tab["accessToken"]), "/api/auth/logout", {"refreshToken": tab["refreshToken"]}
    )
    assert res.status_code == 200
    clock.shift(timedelta(seconds=1))
    assert error(refresh(tokens["refreshToken"])) == REVOKED
    assert sessions_of(EMAIL) == 0


def test_a_replay_after_a_password_change_fails_within_the_window(cast: Any, clock: Any) -> None:
    tokens = login(EMAIL).json()
    tab = refresh(tokens["refreshToken"]).json()
    res = post(
        bearer(tab["accessToken"]),
        "/api/auth/change-password",
        {
            "oldPassword": TEST_PASSWORD,
            "newPassword": "a-much-better-secret-7",
            "passwordConfirmation": "a-much-better-secret-7",
        },
    )
    assert res.status_code in (200, 201), res.content
    assert error(refresh(tokens["refreshToken"])) == REVOKED


def test_without_a_window_an_immediate_replay_is_reuse(
    cast: Any, clock: Any, settings: Any
) -> None:
    settings.REFRESH_REUSE_GRACE_SECONDS = 0
    token = login(EMAIL).json()["refreshToken"]
    assert refresh(token).status_code == 200
    clock.shift(timedelta(milliseconds=1))
    assert error(refresh(token)) == REVOKED
    assert sessions_of(EMAIL) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tabs", [2, 4, 8])
def test_concurrent_refreshes_with_one_token_all_succeed_in_one_session(tabs: int) -> None:
    from chefops.testing.cast import make_cast

    make_cast()
    token = login(EMAIL).json()["refreshToken"]
    barrier = threading.Barrier(tabs)
    results: list[Any] = [None] * tabs

    def tab(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = refresh(token)
        finally:
            connection.close()

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.status_code for r in results] == [200] * tabs, [r.content for r in results]
    pairs = [r.json() for r in results]
    assert len({p["refreshToken"] for p in pairs}) == tabs
    assert sessions_of(EMAIL) == 1
    session = AuthSession.objects.get(user__email=EMAIL)
    # the presented token plus one successor per tab, all of the one session
    assert RefreshToken.objects.filter(session=session).count() == tabs + 1
    for pair in pairs:
        assert bearer(pair["accessToken"]).get("/api/users").status_code == 200
