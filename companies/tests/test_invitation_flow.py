"""Invitation → set password → login, end to end, with the e-mail delivered through the outbox
handlers and captured by the test e-mail backend."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from companies.handlers import INVITATION_HANDLER
from companies.tests.utils import error, login, post, run_outbox_handlers
from outbox.registry import handlers_for

pytestmark = pytest.mark.django_db

PASSWORD = "my-own-kitchen-77"


def invite(cast: Any, email: str = "new.cook@example.com") -> Any:
    return post(
        cast.api(cast.catering.admin),
        "/api/users",
        {"email": email, "name": "New Cook", "role": "EMPLOYEE"},
    )


def mailed_token(message: Any) -> str:
    link = re.search(r"(\S+/reset-password\?token=)([0-9a-f]{64})", message.body)
    assert link, message.body
    assert link.group(1) == f"{settings.FRONTEND_URL}/reset-password?token="
    assert link.group(0) in message.alternatives[0][0]  # the HTML part carries the same link
    return link.group(2)


def test_invitation_set_password_login(cast: Any) -> None:
    assert INVITATION_HANDLER in {h.name for h in handlers_for("user.invited")}
    res = invite(cast)
    assert res.status_code == 201
    assert mail.outbox == []  # nothing is sent inside the request
    assert error(login("new.cook@example.com", PASSWORD)) == (401, "Invalid credentials")
    events = run_outbox_handlers("user.invited")
    assert len(events) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.cook@example.com"]
    assert message.subject == "You are invited to ChefOps - Delicias del Sur"
    assert "as EMPLOYEE" in message.body and "72 hours" in message.body
    assert message.extra_headers["Message-ID"].startswith(f"<{events[0].id}.{INVITATION_HANDLER}.")
    token = mailed_token(message)
    res = post(APIClient(), "/api/auth/reset-password", {"token": token, "password": PASSWORD})
    assert (res.status_code, res.json()) == (200, {"message": "Password reset successfully"})
    res = login("New.Cook@example.com", PASSWORD)
    assert res.status_code == 200
    body = res.json()
    assert body["user"]["email"] == "new.cook@example.com"
    assert body["user"]["role"] == "EMPLOYEE"
    assert body["company"]["id"] == str(cast.catering.company.id)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['accessToken']}")
    assert len(client.get("/api/users").json()) == 4
    again = post(
        APIClient(), "/api/auth/reset-password", {"token": token, "password": PASSWORD + "x"}
    )
    assert error(again) == (400, "Invalid or expired reset token")


def test_invitation_link_expires_after_72_hours(cast: Any) -> None:
    invite(cast)
    run_outbox_handlers()
    token = mailed_token(mail.outbox[0])
    with time_machine.travel(timezone.now() + timedelta(hours=72, seconds=1)):
        res = post(APIClient(), "/api/auth/reset-password", {"token": token, "password": PASSWORD})
        assert error(res) == (400, "Invalid or expired reset token")
        # A late delivery of the invitation sends nothing: its link would be dead anyway.
        mail.outbox.clear()
        run_outbox_handlers()
        assert mail.outbox == []
    # The invitee can still get in through forgot-password.
    post(APIClient(), "/api/auth/forgot-password", {"email": "new.cook@example.com"})
    run_outbox_handlers("auth.password_reset_requested")
    token = mailed_token(mail.outbox[-1])
    assert (
        post(
            APIClient(), "/api/auth/reset-password", {"token": token, "password": PASSWORD}
        ).status_code
        == 200
    )
    assert login("new.cook@example.com", PASSWORD).status_code == 200


def test_redelivered_event_gives_the_same_message_id(cast: Any) -> None:
    invite(cast)
    run_outbox_handlers()
    run_outbox_handlers()
    first, second = mail.outbox
    assert first.extra_headers["Message-ID"] == second.extra_headers["Message-ID"]


def test_names_cannot_inject_mail_headers(cast: Any) -> None:
    cast.catering.company.name = "Evil\nBcc: victim@example.com"
    cast.catering.company.save()
    invite(cast)
    run_outbox_handlers()
    assert mail.outbox[0].subject == "You are invited to ChefOps - Evil Bcc: victim@example.com"
    assert mail.outbox[0].bcc == []
