"""Outbox handlers of the accounts app: the password-reset and invitation e-mails.

Both are ``external`` (they talk to SMTP). They re-derive the link from the token row (see
companies/services.py, "Token storage"), so the event never carries a usable secret: the
invitation names its row, and a password-reset request carries only the address, the handler
issuing the row itself. A token that is gone, used or expired by the time the event is handled
means there is nothing worth sending: the handler returns quietly and the event counts as
processed.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone

from companies.models import OneTimeToken, User
from companies.services import auth_password_reset_token_issue, one_time_token_value
from outbox.email import send_templated_email
from outbox.registry import outbox_handler

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

logger = logging.getLogger(__name__)

PASSWORD_RESET_HANDLER = "accounts.password_reset_email"  # noqa: S105 - not a secret
INVITATION_HANDLER = "accounts.invitation_email"


def reset_password_link(raw_token: str) -> str:
    return f"{settings.FRONTEND_URL.rstrip('/')}/reset-password?{urlencode({'token': raw_token})}"


def _one_line(text: str) -> str:
    # Names end up in the Subject header; a newline there would be a header injection.
    return " ".join(text.split())


def _live_token(event: OutboxEvent) -> OneTimeToken | None:
    try:
        token_id = uuid.UUID(str(event.payload.get("tokenId")))
    except ValueError:
        logger.warning("%s: event %s names no token; nothing sent", event.event_type, event.id)
        return None
    token = (
        OneTimeToken.objects.select_related("user__company")
        .filter(pk=token_id, used_at__isnull=True)
        .first()
    )
    if token is None or token.expires_at <= timezone.now():
        logger.info(
            "%s: token of event %s is gone or spent; nothing sent", event.event_type, event.id
        )
        return None
    return token


@outbox_handler("auth.password_reset_requested", name=PASSWORD_RESET_HANDLER, external=True)
def password_reset_email(event: OutboxEvent) -> None:
    """The request carries only the address (see ``auth_forgot_password``): the token is
    issued here, for an active user only. Events written before that change name their
    token row instead (``tokenId``) and are still honoured."""
    if "tokenId" in event.payload:
        token = _live_token(event)
    else:
        token = auth_password_reset_token_issue(
            request_id=event.id, email=str(event.payload.get("email") or "")
        )
        if token is None:
            logger.info(
                "%s: event %s: no active account or token; nothing sent", event.event_type, event.id
            )
    if token is None:
        return
    user = token.user
    send_templated_email(
        template="password_reset",
        to=[user.email],
        context={
            "name": _one_line(user.name) or user.email,
            "email": user.email,
            "company_name": _one_line(user.company.name) if user.company else "ChefOps",
            "link": reset_password_link(one_time_token_value(token)),
            "expires_minutes": settings.PASSWORD_RESET_TOKEN_MINUTES,
        },
        event_id=event.id,
        handler=PASSWORD_RESET_HANDLER,
    )


@outbox_handler("user.invited", name=INVITATION_HANDLER, external=True)
def invitation_email(event: OutboxEvent) -> None:
    token = _live_token(event)
    if token is None:
        return
    user = token.user
    inviter = User.objects.filter(pk=event.payload.get("invitedByUserId")).first()
    company_name = _one_line(user.company.name) if user.company else "ChefOps"
    send_templated_email(
        template="invitation",
        to=[user.email],
        context={
            "name": _one_line(user.name) or user.email,
            "email": user.email,
            "role": user.role,
            "company_name": company_name,
            "inviter_name": _one_line(inviter.name or inviter.email) if inviter else company_name,
            "link": reset_password_link(one_time_token_value(token)),
            "expires_hours": settings.INVITATION_TOKEN_HOURS,
        },
        event_id=event.id,
        handler=INVITATION_HANDLER,
    )
