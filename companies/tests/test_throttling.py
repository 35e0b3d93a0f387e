"""Auth rate limits: per client IP and per e-mail/token, 429 with Retry-After, recovery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from companies.rules import parse_rate
from companies.tests.utils import error, login, post

pytestmark = pytest.mark.django_db

TOO_MANY = (429, "Too many requests, please try again later")


@pytest.fixture
def minute_start() -> Any:
    """A frozen clock at the start of a minute, so a fixed window is easy to reason about."""
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=10)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller, start


def test_login_is_limited_per_email_and_recovers(
    cast: Any, settings: Any, minute_start: Any
) -> None:
    traveller, start = minute_start
    settings.AUTH_THROTTLE_IP_RATE = "off"
    settings.AUTH_THROTTLE_EMAIL_RATE = "3/min"
    for _ in range(3):
        assert login("delicias@example.com", "wrong-password").status_code == 401
    traveller.move_to(start + timedelta(seconds=20))
    res = login("DELICIAS@example.com")  # the right password does not bypass the limit
    assert error(res) == TOO_MANY
    assert res["Retry-After"] == "40"
    assert res.json()["error"] == "Too Many Requests"
    assert login("sabores@example.com").status_code == 200  # other e-mails are unaffected
    traveller.move_to(start + timedelta(seconds=60))
    assert login("delicias@example.com").status_code == 200


def test_login_is_limited_per_ip(cast: Any, settings: Any, minute_start: Any) -> None:
    traveller, start = minute_start
    settings.AUTH_THROTTLE_IP_RATE = "2/min"
    settings.AUTH_THROTTLE_EMAIL_RATE = "off"
    assert login("delicias@example.com").status_code == 200
    assert login("sabores@example.com").status_code == 200
    assert error(login("techcorp@example.com")) == TOO_MANY
    # A forged X-Forwarded-For does not buy a fresh budget (no trusted proxy configured).
    res = post(
        APIClient(),
        "/api/auth/login",
        {"email": "techcorp@example.com", "password": "x" * 8},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert error(res) == TOO_MANY
    other_ip = post(
        APIClient(),
        "/api/auth/login",
        {"email": "techcorp@example.com", "password": "x" * 8},
        REMOTE_ADDR="198.51.100.7",
    )
    assert other_ip.status_code == 401
    traveller.move_to(start + timedelta(minutes=1, seconds=1))
    assert login("techcorp@example.com").status_code == 200


def test_trusted_proxy_count_uses_the_forwarded_address(
    cast: Any, settings: Any, minute_start: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.AUTH_THROTTLE_IP_RATE = "1/min"
    settings.AUTH_THROTTLE_EMAIL_RATE = "off"

    def attempt(forwarded: str) -> int:
        return post(
            APIClient(),
            "/api/auth/login",
            {"email": "nobody@example.com", "password": "x" * 8},
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    assert attempt("203.0.113.1") == 401
    assert attempt("203.0.113.1") == 429
    assert attempt("203.0.113.2") == 401
    # Only the address the trusted proxy saw counts; a client-supplied prefix is ignored.
    assert attempt("1.2.3.4, 203.0.113.2") == 429


@pytest.mark.parametrize(
    ("path", "body", "ok"),
    [
        ("/api/auth/refresh", {"refreshToken": "0" * 64}, 401),
        ("/api/auth/forgot-password", {"email": "delicias@example.com"}, 200),
        ("/api/auth/reset-password", {"token": "0" * 64, "password": "long-enough-1"}, 400),
    ],
)
def test_other_public_auth_routes_are_limited(
    cast: Any, settings: Any, minute_start: Any, path: str, body: dict[str, Any], ok: int
) -> None:
    traveller, start = minute_start
    settings.AUTH_THROTTLE_IP_RATE = "off"
    settings.AUTH_THROTTLE_EMAIL_RATE = "2/min"
    for _ in range(2):
        assert post(APIClient(), path, body).status_code == ok
    res = post(APIClient(), path, body)
    assert error(res) == TOO_MANY
    assert res["Retry-After"] == "60"
    traveller.move_to(start + timedelta(minutes=1))
    assert post(APIClient(), path, body).status_code == ok
    settings.AUTH_THROTTLE_EMAIL_RATE = "off"
    settings.AUTH_THROTTLE_IP_RATE = "2/min"
    for _ in range(2):
        assert post(APIClient(), path, body).status_code == ok
    assert error(post(APIClient(), path, body)) == TOO_MANY


def test_off_disables_and_defaults_allow_normal_use(cast: Any, settings: Any) -> None:
    settings.AUTH_THROTTLE_IP_RATE = "off"
    settings.AUTH_THROTTLE_EMAIL_RATE = "off"
    statuses = {login("chef@example.com", "whatever-1").status_code for _ in range(40)}
    assert statuses == {401}


def test_default_rates(settings: Any) -> None:
    assert parse_rate(settings.AUTH_THROTTLE_IP_RATE) == (30, 60)
    assert parse_rate(settings.AUTH_THROTTLE_EMAIL_RATE) == (10, 60)
