"""Pure rules of accounts: who may change a company or a user, token lifetimes, messages.

No ORM here: every function takes plain values, so each rule is unit-tested exhaustively.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

ADMIN = "ADMIN"
UNDELETE_WINDOW = timedelta(days=30)


def refresh_token_lifetime(*, remember_me: bool, days: int, remember_days: int) -> timedelta:
    """7 days, or 30 with "remember me"; each rotation slides the expiry by the same amount."""
    return timedelta(days=remember_days if remember_me else days)


def refresh_replay_is_graced(*, rotated_at: datetime, now: datetime, grace_seconds: int) -> bool:
    """Is a spent refresh token, presented again at ``now``, another tab of the same browser
    (it refreshed with the same token moments after the first tab rotated it) rather than a
    stolen copy? Only within ``grace_seconds`` of the rotation; never before it."""
    return timedelta(0) <= now - rotated_at <= timedelta(seconds=grace_seconds)


def is_platform_staff(*, company_id: uuid.UUID | None, is_staff: bool) -> bool:
    """Platform staff: ``is_staff`` and no company (SPEC §2.1). They act through the Django
    admin, on every company, with what a company's ADMIN (and MANAGER) may do there; a staff
    flag on a company user grants nothing beyond that user's role in its own company."""
    return is_staff and company_id is None


def company_change_denial(
    *,
    actor_company_id: uuid.UUID | None,
    actor_role: str,
    actor_is_staff: bool,
    company_id: uuid.UUID,
) -> str | None:
    """Why the actor may not edit/delete this company, or None when allowed.

    Platform staff (Django admin) may change any company; a company user only their own
    company, and only as ADMIN. The tenant check comes first so an outsider learns nothing
    about roles.
    """
    if is_platform_staff(company_id=actor_company_id, is_staff=actor_is_staff):
        return None
    if actor_company_id != company_id:
        return "You can only modify your own company"
    if actor_role != ADMIN:
        return "This action requires the ADMIN role"
    return None


def user_admin_denial(
    *, actor_company_id: uuid.UUID | None, actor_role: str, actor_is_staff: bool
) -> str | None:
    """Why the actor may not invite, change or delete users, or None when allowed.

    A company ADMIN manages the users of its own company (the service scopes the lookup to
    it); platform staff manage the users of every company, under the same rules (the last
    active ADMIN stays, e-mails stay unique)."""
    if is_platform_staff(company_id=actor_company_id, is_staff=actor_is_staff):
        return None
    if actor_company_id is None:
        return "This action requires a company account"
    if actor_role != ADMIN:
        return "This action requires the ADMIN role"
    return None


STAFF_ONLY_MESSAGE = "This action is reserved to platform staff"


def staff_only_denial(*, actor_company_id: uuid.UUID | None, actor_is_staff: bool) -> str | None:
    """Actions no company user has (setting another person's password): staff only."""
    if is_platform_staff(company_id=actor_company_id, is_staff=actor_is_staff):
        return None
    return STAFF_ONLY_MESSAGE


def removes_last_admin(
    *,
    was_active_admin: bool,
    stays_active_admin: bool,
    other_active_admins: int,
) -> bool:
    """A company must keep at least one active ADMIN (delete, demotion or deactivation)."""
    return was_active_admin and not stays_active_admin and other_active_admins == 0


def undelete_allowed(*, deleted_at: datetime | None, now: datetime) -> bool:
    """A soft-deleted company may be restored for 30 days; after that retention archives it."""
    return deleted_at is None or now - deleted_at <= UNDELETE_WINDOW


_PASSWORD_SUBJECT = re.compile(r"^(This|The|Your) password\b", re.IGNORECASE)


def password_messages(field: str, messages: Iterable[str]) -> list[str]:
    """Django's password-validator texts as readable strings that name the field.

    ``"This password is too common."`` -> ``"password is too common"``.
    """
    out = []
    for message in messages:
        text = str(message).strip().rstrip(".")
        if _PASSWORD_SUBJECT.match(text):
            text = _PASSWORD_SUBJECT.sub(field, text, count=1)
        else:
            text = f"{field}: {text}"
        if text not in out:
            out.append(text)
    return out


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"30/min"`` -> (30, 60); ``"off"``/empty -> None (no limit).

    The period is a number of seconds or a unit (s, sec, m, min, h, hour, d, day) with an
    optional multiplier (``"5/15m"``). Raises ValueError for anything else so a typo in the
    environment fails loudly at the first request instead of silently disabling the limit.
    """
    if rate is None:
        return None
    text = rate.strip().lower()
    if text in {"", "off", "none", "disabled", "0"}:
        return None
    count_text, sep, period_text = text.partition("/")
    if not sep or not count_text.strip().isdigit():
        raise ValueError(f"invalid rate {rate!r}: expected <count>/<period>, e.g. 30/min")
    match = re.fullmatch(r"(\d*)\s*([a-z]*)", period_text.strip())
    if not match:
        raise ValueError(f"invalid rate period in {rate!r}")
    multiplier = int(match.group(1)) if match.group(1) else 1
    units = {
        "": 1,
        "s": 1,
        "sec": 1,
        "second": 1,
        "m": 60,
        "min": 60,
        "minute": 60,
        "h": 3600,
        "hour": 3600,
        "d": 86400,
        "day": 86400,
    }
    unit = match.group(2)
    if unit not in units or (unit == "" and not match.group(1)):
        raise ValueError(f"invalid rate period in {rate!r}")
    count = int(count_text)
    seconds = multiplier * units[unit]
    if count < 1 or seconds < 1:
        raise ValueError(f"invalid rate {rate!r}")
    return count, seconds
