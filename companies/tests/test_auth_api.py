"""Auth routes (reference §3.1, SPEC §2.3, §2.7, §2.8) through the HTTP API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, ClassVar

import jwt
import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.core import mail
from django.utils import timezone

from chefops.testing.factories import TEST_PASSWORD, UserFactory
from companies.authentication import ALGORITHM, access_token_for
from companies.hashers import SizedArgon2PasswordHasher
from companies.models import (
    AuthSession,
    CompanyStatus,
    OneTimeToken,
    OneTimeTokenPurpose,
    RefreshToken,
    Role,
    User,
)
from companies.tests.utils import (
    HEX64,
    ISO_MS,
    UUID_RE,
    bearer,
    error,
    login,
    post,
    run_outbox_handlers,
)
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-much-better-secret-7"


def refresh(token: Any) -> Any:
    from rest_framework.test import APIClient

    return post(APIClient(), "/api/auth/refresh", {"refreshToken": token})


# --- login -----------------------------------------------------------------------------------


def test_login_returns_tokens_company_and_user(cast: Any) -> None:
    res = login("delicias@example.com")
    assert res.status_code == 200
    body = res.json()
    assert list(body) == ["accessToken", "refreshToken", "expiresIn", "company", "user"]
    assert body["expiresIn"] == settings.ACCESS_TOKEN_MINUTES * 60
    assert HEX64.match(body["refreshToken"])
    company, admin = cast.catering.company, cast.catering.admin
    assert body["company"] == {
        "id": str(company.id),
        "name": "Delicias del Sur",
        "email": "delicias@example.com",
        "companyType": "CATERING",
    }
    assert body["user"] == {
        "id": str(admin.id),
        "name": admin.name,
        "email": "delicias@example.com",
        "role": "ADMIN",
    }
    claims = jwt.decode(body["accessToken"], settings.JWT_SECRET, algorithms=[ALGORITHM])
    assert claims["sub"] == str(admin.id)
    assert claims["exp"] - claims["iat"] == settings.ACCESS_TOKEN_MINUTES * 60
    session = AuthSession.objects.get(user=admin)
    assert claims["sid"] == str(session.id)
    # Only the SHA-256 of the refresh token is stored.
    token = RefreshToken.objects.get(session=session)
    assert token.token_hash != body["refreshToken"]
    assert HEX64.match(token.token_hash)
    res = bearer(body["accessToken"]).get("/api/auth/session-status")
    assert res.status_code == 200


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "EMPLOYEE"])
def test_every_role_logs_in_with_its_company(cast: Any, role: str) -> None:
    user = cast.client.user(role)
    res = login(user.email.upper())  # e-mails match without regard to case
    assert res.status_code == 200
    assert res.json()["company"]["id"] == str(cast.client.company.id)
    assert res.json()["company"]["companyType"] == "CLIENT"
    assert res.json()["user"]["role"] == role


def test_wrong_password_and_unknown_email_are_the_same_401(cast: Any) -> None:
    for email, password in (("delicias@example.com", "wrong-password"), ("nobody@x.com", "abcdef")):
        res = login(email, password)
        assert res.status_code == 401
        assert res.json() == {
            "message": "Invalid credentials",
            "error": "Unauthorized",
            "statusCode": 401,
        }


class CountingHasher(SizedArgon2PasswordHasher):
    verifications: ClassVar[list[str]] = []

    def verify(self, password: str, encoded: str) -> bool:
        self.verifications.append(encoded)
        return super().verify(password, encoded)


def test_unknown_email_and_invited_user_still_cost_a_hash(cast: Any, settings: Any) -> None:
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.verifications.clear()
    invited = UserFactory.create(company=cast.client.company, email="invited@example.com")
    invited.set_unusable_password()
    invited.save()
    assert login("nobody@example.com", "whatever-1").status_code == 401
    assert login("invited@example.com", "whatever-1").status_code == 401
    assert len(CountingHasher.verifications) == 2


def test_inactive_or_deleted_company_and_inactive_user(cast: Any) -> None:
    company = cast.client.company
    company.status = CompanyStatus.INACTIVE
    company.save()
    assert error(login("techcorp@example.com")) == (401, "Company account is inactive")
    assert error(login("techcorp@example.com", "wrong-pass")) == (401, "Invalid credentials")
    company.status = CompanyStatus.ACTIVE
    company.deleted_at = timezone.now()
    company.save()
    assert error(login("techcorp.manager@example.com")) == (401, "Company account is inactive")
    user = cast.catering.employee
    user.is_active = False
    user.save()
    # Exactly the wrong password's answer: the right password is not confirmed.
    right, wrong = login(user.email), login(user.email, "wrong-pass")
    assert (right.status_code, right.json()) == (wrong.status_code, wrong.json())
    assert error(right) == (401, "Invalid credentials")


def test_wrong_password_inactive_user_and_unknown_email_cost_one_verification_each(
    cast: Any, settings: Any
) -> None:
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    active = UserFactory.create(company=cast.client.company, email="active@example.com")
    inactive = UserFactory.create(
        company=cast.client.company, email="gone@example.com", is_active=False
    )
    for email, password in (
        (active.email, "wrong-password"),
        (inactive.email, TEST_PASSWORD),  # the right one
        (inactive.email, "wrong-password"),
        ("nobody@example.com", TEST_PASSWORD),
    ):
        CountingHasher.verifications.clear()
        assert error(login(email, password)) == (401, "Invalid credentials")
        assert len(CountingHasher.verifications) == 1, email
    # the same hasher and parameters in each case: the user's own hash, or the dummy one
    assert CountingHasher.verifications[0].startswith("argon2$argon2id$")


def test_platform_staff_cannot_log_in_to_the_api(db: None) -> None:
    User.objects.create_superuser("staff@example.com", TEST_PASSWORD)
    assert error(login("staff@example.com")) == (401, "Invalid credentials")


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (
            {},
            [
                "email must be an email",
                "password must be longer than or equal to 6 characters",
                "password must be a string",
            ],
        ),
        (
            {"email": "a@b.co", "password": "12345"},
            ["password must be longer than or equal to 6 characters"],
        ),
        ({"email": "not-an-email", "password": "123456"}, ["email must be an email"]),
        (
            {"email": "a@b.co", "password": 123456},
            [
                "password must be longer than or equal to 6 characters",
                "password must be a string",
            ],
        ),
        (
            {"email": "a@b.co", "password": "123456", "companyType": "CLIENT"},
            ["property companyType should not exist"],
        ),
    ],
)
def test_login_validation(db: None, body: dict[str, Any], messages: list[str]) -> None:
    from rest_framework.test import APIClient

    assert error(post(APIClient(), "/api/auth/login", body)) == (400, messages)


@pytest.mark.parametrize(
    ("remember", "days"), [(True, 30), ("true", 30), ("yes", 7), (False, 7), (None, 7)]
)
def test_remember_me_gives_thirty_days(cast: Any, remember: Any, days: int) -> None:
    before = timezone.now()
    res = login("delicias@example.com", rememberMe=remember)
    assert res.status_code == 200
    session = AuthSession.objects.get()
    token = RefreshToken.objects.get()
    assert session.remember_me is (days == 30)
    assert before + timedelta(days=days) <= token.expires_at
    assert token.expires_at <= timezone.now() + timedelta(days=days)


def test_login_upgrades_older_password_hashes(cast: Any, settings: Any) -> None:
    settings.PASSWORD_HASHERS = [
        "companies.hashers.SizedArgon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    user = cast.catering.manager
    legacy_hashes = [
        make_password(TEST_PASSWORD, hasher="pbkdf2_sha256"),
        # Django's own Argon2 parameters (~100 MiB per hash), under the same "argon2" prefix.
        Argon2PasswordHasher().encode(TEST_PASSWORD, Argon2PasswordHasher().salt()),
    ]
    assert "m=102400" in legacy_hashes[1]
    for legacy in legacy_hashes:
        User.objects.filter(pk=user.pk).update(password=legacy)
        assert login(user.email).status_code == 200
        user.refresh_from_db()
        assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
        assert login(user.email).status_code == 200


# --- access tokens ---------------------------------------------------------------------------


def test_access_token_expires_and_bad_tokens_are_401(cast: Any) -> None:
    user = cast.client.employee
    client = cast.api(user)
    assert client.get("/api/auth/session-status").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=15, seconds=10)):
        res = client.get("/api/auth/session-status")
        assert res.status_code == 401
        assert res.json() == {"message": "Unauthorized", "statusCode": 401}
    now = int(timezone.now().timestamp())
    for claims in (
        {"sub": "not-a-uuid", "iat": now, "exp": now + 60, "typ": "access"},
        {"sub": str(user.id), "iat": now, "exp": now + 60, "typ": "refresh"},
        {
            "sub": "00000000-0000-4000-8000-000000000000",
            "iat": now,
            "exp": now + 60,
            "typ": "access",
        },
    ):
        token = jwt.encode(claims, settings.JWT_SECRET, algorithm=ALGORITHM)
        assert bearer(token).get("/api/auth/session-status").status_code == 401
    forged = jwt.encode(
        {"sub": str(user.id), "iat": now, "exp": now + 60, "typ": "access"},
        "another-secret-of-at-least-32-bytes!",
    )
    assert bearer(forged).get("/api/users").status_code == 401


def test_access_token_dies_with_its_user_or_company(cast: Any) -> None:
    client = cast.api(cast.client.manager)
    assert client.get("/api/users").status_code == 200
    User.objects.filter(pk=cast.client.manager.pk).update(is_active=False)
    assert client.get("/api/users").status_code == 401
    client = cast.api(cast.catering.employee)
    cast.catering.company.status = CompanyStatus.INACTIVE
    cast.catering.company.save()
    assert client.get("/api/users").status_code == 401


# --- refresh ---------------------------------------------------------------------------------


def test_refresh_rotates_and_a_replayed_token_kills_the_family(cast: Any) -> None:
    start = timezone.now()
    first = login("techcorp@example.com").json()
    other_session = login("techcorp@example.com").json()
    res = refresh(first["refreshToken"])
    assert res.status_code == 200
    second = res.json()
    assert list(second) == ["accessToken", "refreshToken", "expiresIn", "company", "user"]
    assert second["refreshToken"] != first["refreshToken"]
    assert HEX64.match(second["refreshToken"])
    assert second["company"]["email"] == "techcorp@example.com"
    assert bearer(second["accessToken"]).get("/api/users").status_code == 200
    third = refresh(second["refreshToken"]).json()
    # Replay of a spent token past the grace window (REFRESH_REUSE_GRACE_SECONDS): 401, and
    # the whole family (the live third token and its access token too) is gone.
    grace = settings.REFRESH_REUSE_GRACE_SECONDS
    with time_machine.travel(start + timedelta(seconds=grace + 5), tick=False):
        assert error(refresh(first["refreshToken"])) == (401, "Invalid or expired refresh token")
        assert error(refresh(third["refreshToken"])) == (401, "Invalid or expired refresh token")
        assert bearer(third["accessToken"]).get("/api/users").status_code == 401
        assert AuthSession.objects.filter(user=cast.client.admin).count() == 1
        # Another login of the same user is a different family and keeps working.
        assert refresh(other_session["refreshToken"]).status_code == 200


def test_refresh_validation_and_unknown_tokens(db: None) -> None:
    from rest_framework.test import APIClient

    assert error(post(APIClient(), "/api/auth/refresh", {})) == (
        400,
        ["refreshToken must be a string"],
    )
    assert error(post(APIClient(), "/api/auth/refresh", {"refreshToken": 5})) == (
        400,
        ["refreshToken must be a string"],
    )
    for token in ("", "x" * 64, "0" * 64):
        assert error(refresh(token)) == (401, "Invalid or expired refresh token")


def test_refresh_tokens_expire_and_slide(cast: Any) -> None:
    start = timezone.now()
    token = login("sabores@example.com").json()["refreshToken"]
    remembered = login("sabores@example.com", rememberMe=True).json()["refreshToken"]
    with time_machine.travel(start + timedelta(days=6), tick=False):
        token = refresh(token).json()["refreshToken"]  # slides to day 13
    with time_machine.travel(start + timedelta(days=12), tick=False):
        token = refresh(token).json()["refreshToken"]  # slides to day 19
    with time_machine.travel(start + timedelta(days=19, minutes=1), tick=False):
        assert error(refresh(token)) == (401, "Invalid or expired refresh token")
        res = refresh(remembered)  # 30 days
        assert res.status_code == 200
        assert RefreshToken.objects.filter(used_at__isnull=True).count() == 2
    with time_machine.travel(start + timedelta(days=19 + 31), tick=False):
        assert refresh(res.json()["refreshToken"]).status_code == 401


def test_refresh_of_inactive_company_or_user(cast: Any) -> None:
    company_token = login("startup@example.com").json()["refreshToken"]
    user_token = login("sabores.employee@example.com").json()["refreshToken"]
    cast.other_client.company.status = CompanyStatus.INACTIVE
    cast.other_client.company.save()
    assert error(refresh(company_token)) == (401, "Company account is no longer active")
    User.objects.filter(email="sabores.employee@example.com").update(is_active=False)
    assert error(refresh(user_token)) == (401, "User account is no longer active")
    # The failed attempts spent nothing: reactivation restores the session.
    cast.other_client.company.status = CompanyStatus.ACTIVE
    cast.other_client.company.save()
    assert refresh(company_token).status_code == 200


# --- logout ----------------------------------------------------------------------------------


def test_logout_revokes_only_the_callers_own_token(cast: Any) -> None:
    mine = login("delicias.manager@example.com").json()
    theirs = login("sabores.manager@example.com").json()
    client = bearer(mine["accessToken"])
    res = post(client, "/api/auth/logout", {"refreshToken": theirs["refreshToken"]})
    assert (res.status_code, res.json()) == (200, {"message": "Logged out successfully"})
    assert refresh(theirs["refreshToken"]).status_code == 200  # left alone
    res = post(client, "/api/auth/logout", {"refreshToken": mine["refreshToken"]})
    assert res.status_code == 200
    assert error(refresh(mine["refreshToken"])) == (401, "Invalid or expired refresh token")
    assert not AuthSession.objects.filter(user__email="delicias.manager@example.com").exists()
    # The access token died with its session; an unknown refresh token is still a 200.
    assert post(client, "/api/auth/logout", {"refreshToken": "unknown"}).status_code == 401
    again = bearer(login("delicias.manager@example.com").json()["accessToken"])
    assert post(again, "/api/auth/logout", {"refreshToken": "unknown"}).status_code == 200


def test_logout_needs_a_bearer_token_and_a_body(cast: Any) -> None:
    from rest_framework.test import APIClient

    res = post(APIClient(), "/api/auth/logout", {"refreshToken": "x"})
    assert (res.status_code, res.json()) == (401, {"message": "Unauthorized", "statusCode": 401})
    assert error(post(cast.api(cast.client.admin), "/api/auth/logout", {})) == (
        400,
        ["refreshToken must be a string"],
    )


# --- change-password -------------------------------------------------------------------------


def change(client: Any, old: Any, new: Any, confirmation: Any = None) -> Any:
    return post(
        client,
        "/api/auth/change-password",
        {
            "oldPassword": old,
            "newPassword": new,
            "passwordConfirmation": new if confirmation is None else confirmation,
        },
    )


def test_change_password_rules_in_order(cast: Any) -> None:
    client = cast.api(cast.client.employee)
    assert error(post(client, "/api/auth/change-password", {})) == (
        400,
        [
            "oldPassword should not be empty",
            "oldPassword must be a string",
            "New password must be at least 8 characters long",
            "newPassword must be a string",
            "passwordConfirmation should not be empty",
            "passwordConfirmation must be a string",
        ],
    )
    assert error(change(client, TEST_PASSWORD, "short")) == (
        400,
        ["New password must be at least 8 characters long"],
    )
    assert error(change(client, "wrong", NEW_PASSWORD, "different-1")) == (
        400,
        "Passwords do not match",
    )
    assert error(change(client, NEW_PASSWORD, NEW_PASSWORD)) == (
        400,
        "New password must be different from current password",
    )
    assert error(change(client, "wrong-old-password", NEW_PASSWORD)) == (
        401,
        "Current password is incorrect",
    )
    assert error(change(client, TEST_PASSWORD, "password123")) == (
        400,
        ["newPassword is too common"],
    )
    assert error(change(client, TEST_PASSWORD, "12345678901")) == (
        400,
        ["newPassword is too common", "newPassword is entirely numeric"],
    )
    res = post(cast.api(), "/api/auth/change-password", {})
    assert (res.status_code, res.json()) == (401, {"message": "Unauthorized", "statusCode": 401})


def test_change_password_revokes_every_session(cast: Any) -> None:
    email = "techcorp.employee@example.com"
    one = login(email).json()
    two = login(email, rememberMe=True).json()
    res = change(bearer(one["accessToken"]), TEST_PASSWORD, NEW_PASSWORD)
    assert (res.status_code, res.json()) == (200, {"message": "Password changed successfully"})
    for session in (one, two):
        assert error(refresh(session["refreshToken"])) == (401, "Invalid or expired refresh token")
    assert not AuthSession.objects.filter(user__email=email).exists()
    # Every access token died with its session, the caller's own included (SPEC §2.3).
    for session in (one, two):
        assert bearer(session["accessToken"]).get("/api/users").status_code == 401
    assert error(login(email)) == (401, "Invalid credentials")
    assert login(email, NEW_PASSWORD).status_code == 200


# --- forgot / reset password -----------------------------------------------------------------

FORGOT_MESSAGE = "If an account exists with this email, a reset link has been sent"


def forgot(email: Any) -> Any:
    from rest_framework.test import APIClient

    return post(APIClient(), "/api/auth/forgot-password", {"email": email})


def reset(token: Any, password: Any = NEW_PASSWORD) -> Any:
    from rest_framework.test import APIClient

    return post(APIClient(), "/api/auth/reset-password", {"token": token, "password": password})


def reset_link_token() -> str:
    """Delivers the pending outbox events and returns the token of the last reset e-mail."""
    run_outbox_handlers()
    message = mail.outbox[-1]
    prefix = f"{settings.FRONTEND_URL}/reset-password?token="
    line = next(line for line in message.body.splitlines() if line.startswith(prefix))
    token = line.removeprefix(prefix)
    assert HEX64.match(token)
    return token


def sql_of(request: Any) -> tuple[Any, list[str]]:
    """The response of ``request()`` and the statements it ran, as templates (no values;
    savepoints, numbered per connection, under one name)."""
    import re

    from django.db import connection

    statements: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(re.sub(r'"s\d+_x\d+"', '"savepoint"', sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        res = request()
    return res, statements


def test_forgot_password_runs_the_same_statements_for_unknown_and_known_emails(
    cast: Any,
) -> None:
    forgot("warm-up@example.com")  # one-time lookups of a process stay out of the comparison
    known_res, known = sql_of(lambda: forgot("TechCorp.Manager@example.com"))
    unknown_res, unknown = sql_of(lambda: forgot("nobody@example.com"))
    inactive = cast.client.employee
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    inactive_res, inactive_sql = sql_of(lambda: forgot(inactive.email))
    for res in (known_res, unknown_res, inactive_res):
        assert (res.status_code, res.json()) == (200, {"message": FORGOT_MESSAGE})
    assert known == unknown == inactive_sql  # same count, same statements, same order
    assert any(sql.startswith('INSERT INTO "outbox_outboxevent"') for sql in known)
    assert not any("companies_user" in sql for sql in known)  # nobody is looked up here
    assert not OneTimeToken.objects.exists()
    events = OutboxEvent.objects.filter(event_type="auth.password_reset_requested")
    assert [e.payload for e in events.order_by("created_at")] == [
        {"email": "warm-up@example.com"},
        {"email": "techcorp.manager@example.com"},
        {"email": "nobody@example.com"},
        {"email": inactive.email},
    ]
    assert {e.aggregate_type for e in events} == {"password_reset"}


def test_the_reset_handler_mails_a_token_to_a_known_active_address_only(cast: Any) -> None:
    for email in ("nobody@example.com", "TechCorp.Manager@example.com"):
        forgot(email)
    User.objects.filter(pk=cast.client.employee.pk).update(is_active=False)
    forgot(cast.client.employee.email)
    run_outbox_handlers()
    token = OneTimeToken.objects.get()  # one token, one mail: the known, active address
    assert token.purpose == OneTimeTokenPurpose.PASSWORD_RESET
    assert token.user == cast.client.manager
    assert token.expires_at - token.created_at == timedelta(minutes=15)
    assert [m.to for m in mail.outbox] == [["techcorp.manager@example.com"]]
    # Neither the event nor the token row holds a usable secret; the link does.
    event = OutboxEvent.objects.get(payload__email="techcorp.manager@example.com")
    assert not any(HEX64.match(str(v)) for v in event.payload.values())
    assert token.token_hash not in mail.outbox[0].body
    assert reset(reset_link_token()).status_code == 200


def test_a_redelivered_reset_request_reuses_its_token_and_sends_nothing_once_used(
    cast: Any,
) -> None:
    forgot("startup@example.com")
    run_outbox_handlers()
    run_outbox_handlers()  # a retry after the first mail (e.g. the ledger write failed)
    token = OneTimeToken.objects.get()
    first, second = mail.outbox
    assert first.body == second.body  # the same link, not a second token
    assert reset(reset_link_token()).status_code == 200
    mail.outbox.clear()
    run_outbox_handlers()
    assert mail.outbox == []
    assert list(OneTimeToken.objects.values_list("pk", flat=True)) == [token.pk]


def test_reset_requests_recorded_by_the_previous_release_are_still_mailed(cast: Any) -> None:
    """Events written before the lookup moved to the handler name their token row."""
    from django.db import transaction

    from companies.services import _one_time_token_create
    from outbox.services import outbox_event_emit

    user = cast.other_client.manager
    with transaction.atomic():
        live = _one_time_token_create(
            user=user, purpose=OneTimeTokenPurpose.PASSWORD_RESET, lifetime=timedelta(minutes=15)
        )
        spent = _one_time_token_create(
            user=user, purpose=OneTimeTokenPurpose.PASSWORD_RESET, lifetime=timedelta(minutes=15)
        )
        for token in (live, spent):
            outbox_event_emit(
                event_type="auth.password_reset_requested",
                aggregate_type="user",
                aggregate_id=user.pk,
                payload={"userId": str(user.pk), "email": user.email, "tokenId": str(token.pk)},
            )
    OneTimeToken.objects.filter(pk=spent.pk).update(used_at=timezone.now())
    run_outbox_handlers()
    assert len(mail.outbox) == 1
    assert reset(reset_link_token()).status_code == 200
    assert set(OneTimeToken.objects.values_list("pk", flat=True)) == {live.pk, spent.pk}


def test_forgot_password_validation(db: None) -> None:
    assert error(forgot("not-an-email")) == (400, ["email must be an email"])


def test_reset_password_end_to_end_with_the_mailed_link(cast: Any) -> None:
    email = "techcorp.manager@example.com"
    old = login(email).json()
    forgot(email)
    token = reset_link_token()
    message = mail.outbox[-1]
    assert message.to == [email]
    assert message.subject == "Password Reset Request - ChefOps"
    assert "15 minutes" in message.body
    assert message.extra_headers["Message-ID"].startswith(f"<{OutboxEvent.objects.get().id}.")
    with time_machine.travel(timezone.now() + timedelta(seconds=2)):
        res = reset(token)
        assert (res.status_code, res.json()) == (200, {"message": "Password reset successfully"})
        # Single use, every session revoked, and earlier access tokens refused.
        assert error(reset(token, "another-good-secret-9")) == (
            400,
            "Invalid or expired reset token",
        )
        assert error(refresh(old["refreshToken"])) == (401, "Invalid or expired refresh token")
        assert bearer(old["accessToken"]).get("/api/users").status_code == 401
        assert error(login(email)) == (401, "Invalid credentials")
        new = login(email, NEW_PASSWORD)
        assert new.status_code == 200
        assert bearer(new.json()["accessToken"]).get("/api/users").status_code == 200


def test_reset_password_errors(cast: Any) -> None:
    assert error(reset("0" * 64)) == (400, "Invalid or expired reset token")
    from rest_framework.test import APIClient

    assert error(post(APIClient(), "/api/auth/reset-password", {})) == (
        400,
        [
            "token should not be empty",
            "token must be a string",
            "New password must be at least 8 characters long",
            "password must be a string",
        ],
    )
    forgot("sabores@example.com")
    token = reset_link_token()
    # A weak password is refused without spending the token.
    assert error(reset(token, "password123")) == (400, ["password is too common"])
    assert error(reset(token, "sabores@example.com")) == (
        400,
        ["password is too similar to the email"],
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=15, seconds=1)):
        assert error(reset(token)) == (400, "Invalid or expired reset token")
    assert reset(token).status_code == 200


def test_a_reset_drops_the_users_other_pending_tokens(cast: Any) -> None:
    forgot("startup.manager@example.com")
    first = reset_link_token()
    forgot("startup.manager@example.com")
    second = reset_link_token()
    assert first != second
    assert reset(second).status_code == 200
    assert error(reset(first, "yet-another-secret-3")) == (400, "Invalid or expired reset token")


# --- session status --------------------------------------------------------------------------


def test_session_status_reports_the_recorded_activity(
    cast: Any, django_assert_num_queries: Any, settings: Any
) -> None:
    settings.AUTH_CACHE_SECONDS = 0  # the queries of the uncached path
    user = cast.catering.employee
    client = cast.api(user)
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=5)
    with time_machine.travel(start, tick=False):
        with django_assert_num_queries(2):  # user+company, then the once-a-minute UPDATE
            res = client.get("/api/auth/session-status")
        assert res.status_code == 200
        user.refresh_from_db()
        assert res.json() == {
            "isActive": True,
            "lastActivityAt": start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        assert user.last_activity_at == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        for _ in range(20):
            with django_assert_num_queries(1):  # no write within the minute
                res = client.get("/api/auth/session-status")
            assert res.status_code == 200
        assert ISO_MS.match(res.json()["lastActivityAt"])
        assert res.json()["lastActivityAt"].startswith(start.strftime("%Y-%m-%dT%H:%M:%S"))
    later = start + timedelta(seconds=61)
    with time_machine.travel(later, tick=False):
        client.get("/api/users")  # any authenticated route records activity
        user.refresh_from_db()
        assert user.last_activity_at == later


def test_session_status_is_not_throttled(cast: Any, settings: Any) -> None:
    settings.AUTH_THROTTLE_IP_RATE = "1/min"
    settings.AUTH_THROTTLE_EMAIL_RATE = "1/min"
    client = cast.api(cast.client.admin)
    statuses = {client.get("/api/auth/session-status").status_code for _ in range(60)}
    assert statuses == {200}


def test_session_status_needs_a_token(db: None) -> None:
    from rest_framework.test import APIClient

    res = APIClient().get("/api/auth/session-status")
    assert (res.status_code, res.json()) == (401, {"message": "Unauthorized", "statusCode": 401})


def test_cast_tokens_carry_a_live_session(cast: Any) -> None:
    client = cast.api(cast.client.employee)
    token = client._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=[ALGORITHM])
    assert AuthSession.objects.filter(pk=claims["sid"], user=cast.client.employee).exists()
    assert UUID_RE.match(bearer(token).get("/api/users").json()[0]["id"])


def test_role_is_read_from_the_database_not_the_token(cast: Any) -> None:
    client = cast.api(cast.client.admin)
    User.objects.filter(pk=cast.client.admin.pk).update(role=Role.EMPLOYEE)
    res = post(client, "/api/users", {"email": "x@example.com", "name": "X", "role": "EMPLOYEE"})
    assert error(res) == (403, "This action requires the ADMIN role")


def test_principal_statement_loads_what_the_orm_loads(cast: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from companies.principals import load_principal

    user = cast.client.manager
    expected = User.objects.select_related("company").get(pk=user.pk)
    with CaptureQueriesContext(connection) as queries:
        loaded = load_principal(user.pk)
        assert loaded is not None
        company = loaded.company  # cached with the user: no second query
    assert len(queries) == 1
    assert company is not None and expected.company is not None
    for field in User._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    for field in type(company)._meta.concrete_fields:
        assert getattr(company, field.attname) == getattr(expected.company, field.attname)
    assert loaded._state.adding is False and loaded._state.db == "default"
    # the loaded instance saves like a queried one (an UPDATE, not an INSERT)
    loaded.name = "Renamed by principal"
    loaded.save(update_fields=["name"])
    assert User.objects.get(pk=user.pk).name == "Renamed by principal"


def test_principal_statement_misses_unknown_and_companyless_users(db: None) -> None:
    import uuid

    from companies.principals import load_principal

    staff = User.objects.create_user(email="ops@example.com", password=None, is_staff=True)
    assert staff.company_id is None
    assert load_principal(staff.pk) is None
    assert load_principal(uuid.uuid4()) is None


def test_signatures_are_verified_once_per_process_but_expiry_and_secret_always(
    cast: Any, settings: Any
) -> None:
    from companies.authentication import _verified_claims, decode_access_token

    user = cast.client.employee
    token = access_token_for(user, session_id=uuid.uuid4())
    before = _verified_claims.cache_info()
    assert decode_access_token(token)["sub"] == str(user.id)
    assert decode_access_token(token)["sub"] == str(user.id)
    after = _verified_claims.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    # a changed secret is part of the key: the token is checked again, and fails
    secret = settings.JWT_SECRET
    settings.JWT_SECRET = "another-secret-of-at-least-32-bytes!"
    with pytest.raises(jwt.InvalidSignatureError):
        decode_access_token(token)
    settings.JWT_SECRET = secret
    # past expiry (plus leeway) the cached claims are refused
    later = timezone.now() + timedelta(minutes=15, seconds=10)
    with time_machine.travel(later), pytest.raises(jwt.ExpiredSignatureError):
        decode_access_token(token)


def test_activity_is_asked_of_the_cache_once_per_user_and_minute(cast: Any) -> None:
    from django.core.cache import cache

    from companies import authentication

    user = cast.client.manager
    api = cast.api(user)
    start = (timezone.now() + timedelta(minutes=1)).replace(second=5)
    with time_machine.travel(start, tick=False):
        assert api.get("/api/auth/session-status").status_code == 200
        minute = int(timezone.now().timestamp()) // authentication.ACTIVITY_INTERVAL_SECONDS
        assert authentication._activity_seen[user.pk] == minute
        # the shared key is gone (e.g. evicted): this process does not ask again this minute
        cache.delete(f"activity:{user.pk}:{minute}")
        User.objects.filter(pk=user.pk).update(last_activity_at=None)
        assert api.get("/api/auth/session-status").status_code == 200
        assert User.objects.get(pk=user.pk).last_activity_at is None
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert api.get("/api/auth/session-status").status_code == 200
        assert User.objects.get(pk=user.pk).last_activity_at is not None
