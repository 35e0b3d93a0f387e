"""Writes of the accounts app: registration, login sessions, passwords, companies and users.

Every function is keyword-only, opens its own transaction, locks what it changes, checks the
rules (companies/rules.py), writes, and emits its outbox event in the same transaction. The API,
the Django admin, commands and tasks all come through here.

Token storage
-------------
* Refresh tokens: 32 random bytes as 64 lowercase hex; only their SHA-256 is stored (unique
  index, so lookups are one indexed query). Each login starts a session family
  (``AuthSession``); a refresh marks the presented token used and issues the next one; a used
  token presented again deletes the whole family (reuse detection). Revocation deletes rows.
* One-time tokens (password reset 15 min, invitation 72 h): only the SHA-256 is stored. The
  raw value is *derived*, ``HMAC-SHA256(SECRET_KEY, "<row id>:<random nonce>")``, instead of
  being carried in the outbox event: an invitation event names the token row, a reset request
  carries only the e-mail address and its handler issues the row, and the e-mail handler
  re-derives the link from the row. So neither the outbox table (kept 30 days, archived after)
  nor the token table alone is enough to use a link; a reader needs the database *and* the
  secret key. A handler that runs after the token was used, replaced or expired sends nothing.
* Sessions: every access token names its session (``sid``) and is refused at the next request
  once the session is gone (see ``companies/authentication.py``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from chefops.api.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from chefops.api.fields import iso_ms
from companies import rules
from companies.authentication import access_token_for
from companies.models import (
    AuthSession,
    CateringProfile,
    ClientOfficeDay,
    ClientProfile,
    Company,
    CompanyStatus,
    CompanyType,
    OneTimeToken,
    OneTimeTokenPurpose,
    RefreshToken,
    Role,
    User,
    WorkMode,
)
from outbox.services import outbox_event_emit

logger = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Invalid credentials"
INVALID_REFRESH_TOKEN = "Invalid or expired refresh token"  # noqa: S105 - not a secret
INVALID_RESET_TOKEN = "Invalid or expired reset token"  # noqa: S105 - not a secret
COMPANY_EMAIL_TAKEN = "A company with this email already exists"
USER_EMAIL_TAKEN = "A user with this email already exists"
TAX_ID_TAKEN = "A company with this tax id already exists"

COMPANY_LABELS = {CompanyType.CATERING: "Catering company", CompanyType.CLIENT: "Client company"}


# --- token primitives ------------------------------------------------------------------------


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _new_refresh_token() -> tuple[str, str]:
    raw = secrets.token_hex(32)
    return raw, token_digest(raw)


def one_time_token_value(token: OneTimeToken) -> str:
    """The raw token of a one-time token row (64 lowercase hex), re-derivable by handlers."""
    return salted_hmac(
        "companies.OneTimeToken", f"{token.id}:{token.nonce}", algorithm="sha256"
    ).hexdigest()


def _one_time_token_create(
    *, user: User, purpose: str, lifetime: timedelta, token_id: uuid.UUID | None = None
) -> OneTimeToken:
    now = timezone.now()
    token = OneTimeToken(
        id=token_id or uuid.uuid4(),
        user=user,
        purpose=purpose,
        nonce=secrets.token_hex(16),
        created_at=now,
        expires_at=now + lifetime,
    )
    token.token_hash = token_digest(one_time_token_value(token))
    token.save(force_insert=True)
    return token


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    company: Company


# --- passwords -------------------------------------------------------------------------------

_dummy_hash: str | None = None


def _burn_password_hash(password: str) -> None:
    """Spend the time of a real verification, so an unknown e-mail answers no faster."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = make_password(secrets.token_hex(16))
    check_password(password, _dummy_hash)


def password_validate(*, password: str, user: User, field: str) -> None:
    """Django's AUTH_PASSWORD_VALIDATORS → 400 with readable messages naming the field."""
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise BadRequest(rules.password_messages(field, exc.messages)) from exc


# --- auth: login sessions --------------------------------------------------------------------


def _expires_in() -> int:
    return int(settings.ACCESS_TOKEN_LIFETIME.total_seconds())


def _refresh_lifetime(remember_me: bool) -> timedelta:
    return rules.refresh_token_lifetime(
        remember_me=remember_me,
        days=settings.REFRESH_TOKEN_DAYS,
        remember_days=settings.REFRESH_TOKEN_REMEMBER_DAYS,
    )


def _session_start(*, user: User, remember_me: bool) -> IssuedTokens:
    assert user.company is not None
    now = timezone.now()
    expires_at = now + _refresh_lifetime(remember_me)
    raw, digest = _new_refresh_token()
    with transaction.atomic():
        session = AuthSession.objects.create(
            user=user, remember_me=remember_me, created_at=now, expires_at=expires_at
        )
        RefreshToken.objects.create(
            session=session, token_hash=digest, created_at=now, expires_at=expires_at
        )
        User.objects.filter(pk=user.pk).update(last_login=now, last_activity_at=now)
    user.last_login = user.last_activity_at = now
    return IssuedTokens(
        access_token=access_token_for(user, session_id=session.id),
        refresh_token=raw,
        expires_in=_expires_in(),
        user=user,
        company=user.company,
    )


def auth_login(*, email: str, password: str, remember_me: bool = False) -> IssuedTokens:
    """E-mail + password → tokens.

    Every refusal costs one password verification, so timing tells nothing: an unknown e-mail
    (or an invited user without a password) verifies against a dummy hash, a deactivated user
    against its own hash, like a wrong password. A deactivated user gets exactly the wrong
    password's answer, right password or not: anything else would confirm the password. An
    inactive company is named only after the right password (as the original does). Older
    hashes are upgraded here.
    """
    user = User.objects.select_related("company").filter(email=email.strip().lower()).first()
    if user is None or not user.has_usable_password():
        _burn_password_hash(password)
        raise Unauthorized(INVALID_CREDENTIALS)
    if not user.is_active:
        check_password(password, user.password)  # the work of a wrong password; no upgrade
        raise Unauthorized(INVALID_CREDENTIALS)
    if not user.check_password(password):
        raise Unauthorized(INVALID_CREDENTIALS)
    if user.company is None:  # platform staff sign in to the Django admin, not the API
        raise Unauthorized(INVALID_CREDENTIALS)
    if not user.company.is_active:
        raise Unauthorized("Company account is inactive")
    return _session_start(user=user, remember_me=remember_me)


def auth_refresh(*, refresh_token: str) -> IssuedTokens:
    """Rotate: the presented token is spent and the next one of its family returned.

    A token that was already spent means a copy is in someone else's hands: the whole
    family is deleted (both holders must log in again) and the call fails. Except within
    ``REFRESH_REUSE_GRACE_SECONDS`` of its rotation: several tabs of one browser refresh with
    the same token at once (the first rotates it, the others follow milliseconds later), and
    each gets a new pair of the same session. The window starts at the rotation and never
    moves, and a session that ended (logout, revocation) has no tokens left to replay.
    """
    with transaction.atomic():
        # The row lock serialises concurrent presentations of one token: the first rotates
        # it, the others see it spent.
        token = (
            RefreshToken.objects.select_for_update(of=("self",))
            .select_related("session__user__company")
            .filter(token_hash=token_digest(refresh_token))
            .first()
        )
        # Read once the lock is held: a tab that waited for the first one's rotation must
        # not see a time before it.
        now = timezone.now()
        if token is None or (token.used_at is None and token.expires_at <= now):
            raise Unauthorized(INVALID_REFRESH_TOKEN)
        if token.used_at is None:
            return _refresh_rotate(token=token, now=now)
        if rules.refresh_replay_is_graced(
            rotated_at=token.used_at,
            now=now,
            grace_seconds=settings.REFRESH_REUSE_GRACE_SECONDS,
        ):
            logger.info(
                "refresh token replayed within the grace window: session %s", token.session_id
            )
            return _refresh_rotate(token=token, now=now)
        # Committed before the 401 below: the revocation must stick.
        AuthSession.objects.filter(pk=token.session_id).delete()
    logger.warning("refresh token reuse detected: session %s revoked", token.session_id)
    raise Unauthorized(INVALID_REFRESH_TOKEN)


def _refresh_rotate(*, token: RefreshToken, now: datetime) -> IssuedTokens:
    """A new refresh token of ``token``'s session (and an access token for it). ``token`` is
    marked spent at its first rotation only: a graced replay does not move its window."""
    session = token.session
    user = session.user
    if user.company is None or not user.company.is_active:
        raise Unauthorized("Company account is no longer active")
    if not user.is_active:
        raise Unauthorized("User account is no longer active")
    expires_at = now + _refresh_lifetime(session.remember_me)
    raw, digest = _new_refresh_token()
    if token.used_at is None:
        token.used_at = now
        token.save(update_fields=["used_at"])
    RefreshToken.objects.create(
        session=session, token_hash=digest, created_at=now, expires_at=expires_at
    )
    session.expires_at = expires_at
    session.last_rotated_at = now
    session.save(update_fields=["expires_at", "last_rotated_at"])
    return IssuedTokens(
        access_token=access_token_for(user, session_id=session.id),
        refresh_token=raw,
        expires_in=_expires_in(),
        user=user,
        company=user.company,
    )


def auth_logout(*, user: User, refresh_token: str) -> None:
    """Ends the caller's session of that token; another user's token is left alone."""
    with transaction.atomic():
        AuthSession.objects.filter(
            user=user, tokens__token_hash=token_digest(refresh_token)
        ).delete()


def auth_sessions_revoke(*, user_ids: list[Any]) -> int:
    """Deletes every refresh-token family of these users (their refresh tokens stop working)."""
    deleted, _ = AuthSession.objects.filter(user_id__in=user_ids).delete()
    return deleted


def auth_change_password(
    *, user: User, old_password: str, new_password: str, password_confirmation: str
) -> None:
    """Checks in the reference's order; on success every session of the user is revoked."""
    if new_password != password_confirmation:
        raise BadRequest("Passwords do not match")
    if old_password == new_password:
        raise BadRequest("New password must be different from current password")
    with transaction.atomic():
        locked = User.objects.select_for_update().filter(pk=user.pk).first()
        if locked is None:
            raise Unauthorized("User not found")
        if not locked.check_password(old_password):
            raise Unauthorized("Current password is incorrect")
        password_validate(password=new_password, user=locked, field="newPassword")
        locked.set_password(new_password)
        locked.save(update_fields=["password", "updated_at"])
        auth_sessions_revoke(user_ids=[locked.pk])


def auth_forgot_password(*, email: str) -> None:
    """Records the request, and nothing else: one outbox event carrying the address, whether
    an account has it or not. The request runs the same statements for every address, so
    neither its answer nor its duration tells which e-mails exist. The dispatcher's handler
    (``companies/handlers.py``) then issues the 15-minute token and mails the link
    (``auth_password_reset_token_issue``), or does nothing for an unknown or inactive
    address. The caller answers the same fixed 200 either way."""
    address = email.strip().lower()
    with transaction.atomic():
        outbox_event_emit(
            event_type="auth.password_reset_requested",
            aggregate_type="password_reset",
            aggregate_id=token_digest(address),  # an e-mail may be longer than the column
            payload={"email": address},
        )


# Token ids of forgot-password requests are derived from the request's outbox event id.
_RESET_TOKEN_NAMESPACE = uuid.UUID("6f3c2a51-6d0e-4b8f-9a57-2f1f3c1de5a4")


def auth_password_reset_token_issue(*, request_id: uuid.UUID, email: str) -> OneTimeToken | None:
    """The reset token of one forgot-password request (its outbox event ``request_id``), or
    None: no active user has that address, or the token was used or expired since.

    Created on the first delivery of the event; a later delivery (a retry after the mail
    failed) finds the same row, whose id is derived from the event's, so a request never
    mints two links.
    """
    user = User.objects.filter(email=email.strip().lower(), is_active=True).first()
    if user is None:
        return None
    token_id = uuid.uuid5(_RESET_TOKEN_NAMESPACE, str(request_id))
    tokens = OneTimeToken.objects.select_related("user__company")
    token = tokens.filter(pk=token_id).first()
    if token is None:
        try:
            with transaction.atomic():
                _one_time_token_create(
                    user=user,
                    purpose=OneTimeTokenPurpose.PASSWORD_RESET,
                    lifetime=timedelta(minutes=settings.PASSWORD_RESET_TOKEN_MINUTES),
                    token_id=token_id,
                )
        except IntegrityError:
            pass  # a concurrent delivery of the same event created it
        token = tokens.filter(pk=token_id).first()
    if token is None or token.used_at is not None or token.expires_at <= timezone.now():
        return None
    return token


def auth_reset_password(*, token: str, password: str) -> User:
    """Sets the password from a reset or invitation token (single use).

    Also: every other pending token of the user is dropped, every session revoked, and access
    tokens issued before now refused (``tokens_valid_after``).
    """
    now = timezone.now()
    with transaction.atomic():
        row = (
            OneTimeToken.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(token_hash=token_digest(token), used_at__isnull=True, expires_at__gt=now)
            .first()
        )
        if row is None:
            raise BadRequest(INVALID_RESET_TOKEN)
        user = row.user
        password_validate(password=password, user=user, field="password")
        user.set_password(password)
        user.tokens_valid_after = now
        user.save(update_fields=["password", "tokens_valid_after", "updated_at"])
        row.used_at = now
        row.save(update_fields=["used_at"])
        OneTimeToken.objects.filter(user=user, used_at__isnull=True).delete()
        auth_sessions_revoke(user_ids=[user.pk])
    return user


def auth_tokens_purge_expired(
    *, now: datetime | None = None, batch_size: int = 1000
) -> dict[str, int]:
    """Daily job: delete expired session families, expired (rotated) refresh tokens and
    expired one-time tokens, in short batches so no lock is held for long."""
    now = now or timezone.now()
    counts = {"sessions": 0, "refresh_tokens": 0, "one_time_tokens": 0}
    targets: list[tuple[str, Any]] = [
        ("sessions", AuthSession),
        ("refresh_tokens", RefreshToken),
        ("one_time_tokens", OneTimeToken),
    ]
    for key, model in targets:
        while True:
            ids = list(
                model.objects.filter(expires_at__lte=now)
                .order_by()
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            with transaction.atomic():
                if model is AuthSession:
                    RefreshToken.objects.filter(session_id__in=ids).delete()
                model.objects.filter(pk__in=ids).delete()
            counts[key] += len(ids)
    return counts


# --- companies -------------------------------------------------------------------------------


def _raise_company_conflict(*, email: str | None, tax_id: str | None, exclude: Any = None) -> None:
    companies = Company.objects.exclude(pk=exclude) if exclude else Company.objects.all()
    if email is not None:
        if companies.filter(email=email).exists():
            raise Conflict(COMPANY_EMAIL_TAKEN)
        if exclude is None and User.objects.filter(email=email).exists():
            raise Conflict(USER_EMAIL_TAKEN)
    if tax_id is not None and companies.filter(tax_id=tax_id).exists():
        raise Conflict(TAX_ID_TAKEN)


def _clean_tax_id(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def company_register(
    *,
    company_type: str,
    name: str,
    email: str,
    password: str,
    tax_id: str | None = None,
    daily_capacity: int | None = None,
    work_mode: str | None = None,
    office_days: list[int] | None = None,
) -> Company:
    """Public sign-up: the company, its profile and its first ADMIN user (same e-mail and
    password, so the e-mail logs in right away), in one transaction; emits
    ``company.registered``."""
    email = email.strip().lower()
    tax_id = _clean_tax_id(tax_id)
    admin = User(email=email, name=name, role=Role.ADMIN)
    password_validate(password=password, user=admin, field="password")
    _raise_company_conflict(email=email, tax_id=tax_id)
    encoded = make_password(password)  # hashed before the transaction: no lock held meanwhile
    try:
        with transaction.atomic():
            company = Company.objects.create(
                company_type=company_type, name=name, email=email, tax_id=tax_id
            )
            if company_type == CompanyType.CATERING:
                assert daily_capacity is not None
                CateringProfile.objects.create(company=company, daily_capacity=daily_capacity)
            else:
                ClientProfile.objects.create(
                    company=company, work_mode=work_mode or WorkMode.HYBRID
                )
                ClientOfficeDay.objects.bulk_create(
                    ClientOfficeDay(company=company, day_of_week=day) for day in office_days or []
                )
            admin.company = company
            admin.password = encoded
            admin.save(force_insert=True)
            outbox_event_emit(
                event_type="company.registered",
                aggregate_type="company",
                aggregate_id=company.pk,
                payload={
                    "companyId": str(company.pk),
                    "companyType": company.company_type,
                    "name": company.name,
                    "email": company.email,
                    "adminUserId": str(admin.pk),
                },
                actor=admin,
            )
    except IntegrityError as exc:  # a concurrent registration won the race
        _raise_company_conflict(email=email, tax_id=tax_id)
        raise Conflict("A company with these details already exists") from exc
    return company


def _locked_company(*, company_id: Any, company_type: str) -> Company:
    company = (
        Company.objects.select_for_update().filter(pk=company_id, company_type=company_type).first()
    )
    if company is None:
        raise NotFound(f"{COMPANY_LABELS[CompanyType(company_type)]} #{company_id} not found")
    return company


def _check_company_change(actor: User, company: Company) -> None:
    denial = rules.company_change_denial(
        actor_company_id=actor.company_id,
        actor_role=actor.role,
        actor_is_staff=actor.is_staff,
        company_id=company.pk,
    )
    if denial:
        raise Forbidden(denial)


def company_update(
    *, actor: User, company_id: Any, company_type: str, data: Mapping[str, Any]
) -> Company:
    """PATCH of a company by its own ADMIN (or platform staff). ``updated_at`` moves when
    anything changes, profile fields included. ``status: ACTIVE`` also undoes a soft delete
    within the 30-day window.

    ``email`` (the company's contact address) is changed by platform staff in the admin only:
    the API's input refuses the key, as the original does. It stays unique among companies;
    the users' login addresses are their own and do not follow it."""
    tax_id = _clean_tax_id(data["tax_id"]) if "tax_id" in data else None
    email = str(data["email"]).strip().lower() if "email" in data else None
    try:
        with transaction.atomic():
            company = _locked_company(company_id=company_id, company_type=company_type)
            _check_company_change(actor, company)
            changed = False
            if "name" in data and data["name"] != company.name:
                company.name = data["name"]
                changed = True
            if email is not None and email != company.email:
                _raise_company_conflict(email=email, tax_id=None, exclude=company.pk)
                company.email = email
                changed = True
            if "tax_id" in data and tax_id != company.tax_id:
                if tax_id is not None:
                    _raise_company_conflict(email=None, tax_id=tax_id, exclude=company.pk)
                company.tax_id = tax_id
                changed = True
            if "status" in data:
                changed |= _company_status_set(company, data["status"])
            if "daily_capacity" in data and company_type == CompanyType.CATERING:
                profile, _ = CateringProfile.objects.get_or_create(
                    company=company, defaults={"daily_capacity": data["daily_capacity"]}
                )
                if profile.daily_capacity != data["daily_capacity"]:
                    profile.daily_capacity = data["daily_capacity"]
                    profile.save(update_fields=["daily_capacity"])
                    changed = True
            if company_type == CompanyType.CLIENT:
                changed |= _client_profile_update(company, data)
            if changed:
                company.save()
    except IntegrityError as exc:
        _raise_company_conflict(email=email, tax_id=tax_id, exclude=company_id)
        raise Conflict("A company with these details already exists") from exc
    return company


def _company_status_set(company: Company, status: str) -> bool:
    if status == CompanyStatus.ACTIVE and company.deleted_at is not None:
        if not rules.undelete_allowed(deleted_at=company.deleted_at, now=timezone.now()):
            raise BadRequest("A company deleted more than 30 days ago cannot be restored")
        company.deleted_at = None
        company.status = CompanyStatus.ACTIVE
        return True
    if status != company.status:
        company.status = status
        return True
    return False


def _client_profile_update(company: Company, data: Mapping[str, Any]) -> bool:
    changed = False
    if "work_mode" in data:
        profile, created = ClientProfile.objects.get_or_create(
            company=company, defaults={"work_mode": data["work_mode"]}
        )
        if created or profile.work_mode != data["work_mode"]:
            profile.work_mode = data["work_mode"]
            profile.save(update_fields=["work_mode"])
            changed = True
    if "office_days" in data:
        current = list(
            ClientOfficeDay.objects.filter(company=company).values_list("day_of_week", flat=True)
        )
        if current != list(data["office_days"]):
            ClientOfficeDay.objects.filter(company=company).delete()
            ClientOfficeDay.objects.bulk_create(
                ClientOfficeDay(company=company, day_of_week=day) for day in data["office_days"]
            )
            changed = True
    return changed


def company_soft_delete(*, actor: User, company_id: Any, company_type: str) -> Company:
    """DELETE: INACTIVE + ``deleted_at``. Logins and tokens stop working at once and every
    session of its users is revoked; staff (or the PATCH path) may restore it for 30 days."""
    with transaction.atomic():
        company = _locked_company(company_id=company_id, company_type=company_type)
        _check_company_change(actor, company)
        if company.deleted_at is None:
            company.status = CompanyStatus.INACTIVE
            company.deleted_at = timezone.now()
            company.save()
        auth_sessions_revoke(user_ids=list(company.users.values_list("pk", flat=True)))
    return company


def company_deactivate(*, actor: User, company_id: Any) -> Company:
    company = Company.objects.get(pk=company_id)
    return company_update(
        actor=actor,
        company_id=company_id,
        company_type=company.company_type,
        data={"status": CompanyStatus.INACTIVE},
    )


def company_undelete(*, actor: User, company_id: Any) -> Company:
    company = Company.objects.get(pk=company_id)
    return company_update(
        actor=actor,
        company_id=company_id,
        company_type=company.company_type,
        data={"status": CompanyStatus.ACTIVE},
    )


# --- users -----------------------------------------------------------------------------------


def _require_company_admin(actor: User) -> None:
    denial = rules.user_admin_denial(
        actor_company_id=actor.company_id, actor_role=actor.role, actor_is_staff=actor.is_staff
    )
    if denial:
        raise Forbidden(denial)


def _locked_company_user(*, actor: User, user_id: Any) -> User:
    # A company ADMIN reaches the users of its own company; platform staff (no company) the
    # user's own company. Platform staff accounts themselves are no company's users.
    company_id = actor.company_id
    if company_id is None:
        company_id = User.objects.filter(pk=user_id).values_list("company_id", flat=True).first()
        if company_id is None:
            raise NotFound(f"User #{user_id} not found")
    # Locking the company row serialises every change to its set of admins, so two admins
    # demoting each other at once cannot leave the company without one.
    Company.objects.select_for_update().filter(pk=company_id).first()
    user = (
        User.objects.select_for_update(of=("self",))
        .filter(pk=user_id, company_id=company_id)
        .first()
    )
    if user is None:
        raise NotFound(f"User #{user_id} not found")
    return user


def _other_active_admins(user: User) -> int:
    assert user.company_id is not None
    return (
        User.objects.filter(company_id=user.company_id, role=Role.ADMIN, is_active=True)
        .exclude(pk=user.pk)
        .count()
    )


def user_invite(*, actor: User, email: str, name: str, role: str, company_id: Any = None) -> User:
    """POST /users: a user of the actor's company without a usable password; the invitation
    e-mail (outbox ``user.invited``) links to the reset-password page with a 72-hour token.

    Platform staff (the admin) invite into the company they name (``company_id``); a company
    ADMIN always invites into its own company."""
    _require_company_admin(actor)
    if actor.company_id is not None:
        company_id = actor.company_id
    elif company_id is None:
        raise BadRequest("A company user needs a company")
    elif not Company.objects.filter(pk=company_id).exists():
        raise NotFound(f"Company #{company_id} not found")
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise Conflict(USER_EMAIL_TAKEN)
    try:
        with transaction.atomic():
            user = User(email=email, name=name, role=role, company_id=company_id)
            user.set_unusable_password()
            user.save(force_insert=True)
            token = _one_time_token_create(
                user=user,
                purpose=OneTimeTokenPurpose.INVITATION,
                lifetime=timedelta(hours=settings.INVITATION_TOKEN_HOURS),
            )
            outbox_event_emit(
                event_type="user.invited",
                aggregate_type="user",
                aggregate_id=user.pk,
                payload={
                    "userId": str(user.pk),
                    "email": user.email,
                    "role": user.role,
                    "companyId": str(company_id),
                    "invitedByUserId": str(actor.pk),
                    "tokenId": str(token.id),
                    "expiresAt": iso_ms(token.expires_at),
                },
                actor=actor,
            )
    except IntegrityError as exc:
        raise Conflict(USER_EMAIL_TAKEN) from exc
    return user


def user_update(*, actor: User, user_id: Any, data: Mapping[str, Any]) -> User:
    """PATCH /users/:id by an ADMIN of the same company (or platform staff, in the admin).
    The last active ADMIN can be neither demoted nor deactivated; a deactivated user loses
    every session at once."""
    _require_company_admin(actor)
    try:
        with transaction.atomic():
            user = _locked_company_user(actor=actor, user_id=user_id)
            role = data.get("role", user.role)
            is_active = data.get("is_active", user.is_active)
            if rules.removes_last_admin(
                was_active_admin=user.role == Role.ADMIN and user.is_active,
                stays_active_admin=role == Role.ADMIN and is_active,
                other_active_admins=_other_active_admins(user),
            ):
                raise BadRequest("Cannot demote or deactivate the last active ADMIN of the company")
            if "email" in data:
                email = data["email"].strip().lower()
                if email != user.email and User.objects.filter(email=email).exists():
                    raise Conflict(USER_EMAIL_TAKEN)
                user.email = email
            if "name" in data:
                user.name = data["name"]
            was_active = user.is_active
            user.role = role
            user.is_active = is_active
            user.save()
            if was_active and not is_active:
                auth_sessions_revoke(user_ids=[user.pk])
    except IntegrityError as exc:
        raise Conflict(USER_EMAIL_TAKEN) from exc
    return user


def user_delete(*, actor: User, user_id: Any) -> None:
    """Hard delete (sessions and tokens go with it); never the last active ADMIN. By an ADMIN
    of the same company, or platform staff in the admin."""
    _require_company_admin(actor)
    with transaction.atomic():
        user = _locked_company_user(actor=actor, user_id=user_id)
        if rules.removes_last_admin(
            was_active_admin=user.role == Role.ADMIN and user.is_active,
            stays_active_admin=False,
            other_active_admins=_other_active_admins(user),
        ):
            raise BadRequest("Cannot delete the last active ADMIN of the company")
        user.delete()


def user_password_set(*, actor: User, user_id: Any, password: str | None) -> User:
    """Platform staff set a person's password, or (``None``) disable password login: the
    admin's "change password" form.

    What a reset does: the password validators, every session revoked, pending reset and
    invitation links dropped, and access tokens issued before now refused — so setting the
    password of a compromised account locks the intruder out at once."""
    denial = rules.staff_only_denial(
        actor_company_id=actor.company_id, actor_is_staff=actor.is_staff
    )
    if denial:
        raise Forbidden(denial)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound(f"User #{user_id} not found")
        if password is None:
            user.set_unusable_password()
        else:
            password_validate(password=password, user=user, field="password")
            user.set_password(password)
        user.tokens_valid_after = timezone.now()
        user.save(update_fields=["password", "tokens_valid_after", "updated_at"])
        OneTimeToken.objects.filter(user=user, used_at__isnull=True).delete()
        auth_sessions_revoke(user_ids=[user.pk])
    return user
