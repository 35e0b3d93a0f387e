"""Token purge job and the pure rules of accounts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from companies import rules
from companies.models import AuthSession, OneTimeToken, RefreshToken
from companies.tasks import auth_tokens_purge_expired
from companies.tests.utils import login, post, run_outbox_handlers


@pytest.mark.django_db
def test_purge_deletes_only_expired_tokens(cast: Any) -> None:
    from rest_framework.test import APIClient

    def refresh(token: str) -> Any:
        return post(APIClient(), "/api/auth/refresh", {"refreshToken": token})

    start = timezone.now()
    stale = login("delicias@example.com").json()  # 7 days, never used again
    sliding = login("sabores@example.com").json()  # 7 days, rotated on day 6
    post(APIClient(), "/api/auth/forgot-password", {"email": "techcorp@example.com"})
    run_outbox_handlers()  # the handler issues the reset token
    with time_machine.travel(start + timedelta(days=6)):
        sliding = refresh(sliding["refreshToken"]).json()
    assert (AuthSession.objects.count(), RefreshToken.objects.count()) == (2, 3)
    with time_machine.travel(start + timedelta(days=8)):
        out = StringIO()
        call_command("purge_auth_tokens", "--dry-run", stdout=out)
        # stale session + its token, the token rotated away on day 6, the reset token
        assert out.getvalue().strip() == (
            "would delete: sessions=1, refresh_tokens=2, one_time_tokens=1"
        )
        assert RefreshToken.objects.count() == 3
        counts = auth_tokens_purge_expired.apply().get()
        assert counts == {"sessions": 1, "refresh_tokens": 1, "one_time_tokens": 1}
        assert list(AuthSession.objects.values_list("user__email", flat=True)) == [
            "sabores@example.com"
        ]
        assert RefreshToken.objects.count() == 1
        assert OneTimeToken.objects.count() == 0
        assert refresh(sliding["refreshToken"]).status_code == 200
        assert refresh(stale["refreshToken"]).status_code == 401
        assert auth_tokens_purge_expired.apply().get() == {
            "sessions": 0,
            "refresh_tokens": 0,
            "one_time_tokens": 0,
        }


def test_refresh_token_lifetime() -> None:
    assert rules.refresh_token_lifetime(remember_me=False, days=7, remember_days=30) == timedelta(
        days=7
    )
    assert rules.refresh_token_lifetime(remember_me=True, days=7, remember_days=30) == timedelta(
        days=30
    )


A, B = uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(
    ("actor_company", "role", "staff", "target", "expected"),
    [
        (A, "ADMIN", False, A, None),
        (A, "MANAGER", False, A, "This action requires the ADMIN role"),
        (A, "EMPLOYEE", False, A, "This action requires the ADMIN role"),
        (A, "ADMIN", False, B, "You can only modify your own company"),
        (A, "EMPLOYEE", False, B, "You can only modify your own company"),
        (None, "EMPLOYEE", True, B, None),
        (None, "ADMIN", False, B, "You can only modify your own company"),
        (A, "ADMIN", True, B, "You can only modify your own company"),
    ],
)
def test_company_change_denial(
    actor_company: Any, role: str, staff: bool, target: Any, expected: str | None
) -> None:
    assert (
        rules.company_change_denial(
            actor_company_id=actor_company, actor_role=role, actor_is_staff=staff, company_id=target
        )
        == expected
    )


@pytest.mark.parametrize("was", [True, False])
@pytest.mark.parametrize("stays", [True, False])
@pytest.mark.parametrize("others", [0, 1, 2])
def test_removes_last_admin(was: bool, stays: bool, others: int) -> None:
    assert rules.removes_last_admin(
        was_active_admin=was, stays_active_admin=stays, other_active_admins=others
    ) == (was and not stays and others == 0)


def test_undelete_window() -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert rules.undelete_allowed(deleted_at=None, now=now)
    assert rules.undelete_allowed(deleted_at=now - timedelta(days=30), now=now)
    assert not rules.undelete_allowed(deleted_at=now - timedelta(days=30, seconds=1), now=now)


def test_password_messages() -> None:
    assert rules.password_messages(
        "newPassword",
        [
            "This password is too common.",
            "This password is entirely numeric.",
            "The password is too similar to the email.",
            "Something else.",
            "This password is too common.",
        ],
    ) == [
        "newPassword is too common",
        "newPassword is entirely numeric",
        "newPassword is too similar to the email",
        "newPassword: Something else",
    ]


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("30/min", (30, 60)),
        ("10/m", (10, 60)),
        ("5/s", (5, 1)),
        ("100/hour", (100, 3600)),
        ("1000/day", (1000, 86400)),
        ("5/15m", (5, 900)),
        ("7/30", (7, 30)),
        (" 3 / min ", (3, 60)),
        ("off", None),
        ("OFF", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_rate(rate: str | None, expected: Any) -> None:
    assert rules.parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["30", "x/min", "30/fortnight", "0/min", "-1/min", "30/"])
def test_parse_rate_rejects_typos(rate: str) -> None:
    with pytest.raises(ValueError, match="invalid rate"):
        rules.parse_rate(rate)


def test_hashes_run_on_the_bounded_pool(settings: Any) -> None:
    import threading

    from companies import hashers

    assert hashers.run_on_hash_pool(lambda: threading.current_thread().name).startswith("argon2")
    # A call made from a pool thread runs inline instead of waiting on itself.
    nested = hashers.run_on_hash_pool(
        hashers.run_on_hash_pool, lambda: threading.current_thread().name
    )
    assert nested.startswith("argon2")
    assert hashers._hash_pool()._max_workers == hashers.ARGON2_THREADS
    encoded = hashers.SizedArgon2PasswordHasher().encode("secret-value-1", "saltsaltsalt")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert hashers.SizedArgon2PasswordHasher().verify("secret-value-1", encoded)


def test_check_flags_a_shadowing_argon2_hasher(settings: Any) -> None:
    from companies.checks import SIZED, check_password_hashers

    settings.PASSWORD_HASHERS = [SIZED, "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    assert check_password_hashers() == []
    settings.PASSWORD_HASHERS = [SIZED, "companies.tests.hashers.FastArgon2PasswordHasher"]
    assert check_password_hashers() == []  # a subclass keeps the pool
    settings.PASSWORD_HASHERS = [SIZED, "django.contrib.auth.hashers.Argon2PasswordHasher"]
    assert [m.id for m in check_password_hashers()] == ["companies.W002"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    assert [m.id for m in check_password_hashers()] == ["companies.W001"]


@pytest.mark.parametrize(
    ("actor_company", "role", "staff", "expected"),
    [
        (None, "EMPLOYEE", True, None),  # platform staff
        (None, "ADMIN", False, "This action requires a company account"),
        (A, "ADMIN", False, None),
        (A, "MANAGER", False, "This action requires the ADMIN role"),
        (A, "EMPLOYEE", True, "This action requires the ADMIN role"),  # the flag grants nothing
    ],
)
def test_user_admin_denial(
    actor_company: Any, role: str, staff: bool, expected: str | None
) -> None:
    assert (
        rules.user_admin_denial(
            actor_company_id=actor_company, actor_role=role, actor_is_staff=staff
        )
        == expected
    )


@pytest.mark.parametrize(
    ("actor_company", "staff", "allowed"),
    [(None, True, True), (None, False, False), (A, True, False), (A, False, False)],
)
def test_staff_only_denial(actor_company: Any, staff: bool, allowed: bool) -> None:
    denial = rules.staff_only_denial(actor_company_id=actor_company, actor_is_staff=staff)
    assert denial == (None if allowed else "This action is reserved to platform staff")
