"""Companies (caterers and clients), their profiles, and the people who log in (users)."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Length, Lower
from django.db.models.lookups import Exact
from django.utils import timezone

from chefops import cachewrites


class CompanyType(models.TextChoices):
    CATERING = "CATERING"
    CLIENT = "CLIENT"


class CompanyStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class WorkMode(models.TextChoices):
    REMOTE = "REMOTE"
    HYBRID = "HYBRID"
    ONSITE = "ONSITE"


class Role(models.TextChoices):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    EMPLOYEE = "EMPLOYEE"


class Company(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company_type = models.CharField(max_length=16, choices=CompanyType.choices)
    name = models.CharField(max_length=255)
    email = models.EmailField(max_length=254, unique=True)  # always lower case
    tax_id = models.CharField(max_length=64, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=CompanyStatus.choices, default=CompanyStatus.ACTIVE
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="company_email_lower"
            ),
            models.UniqueConstraint(
                fields=["tax_id"],
                condition=models.Q(tax_id__isnull=False),
                name="company_tax_id_unique",
            ),
            models.CheckConstraint(condition=~models.Q(tax_id=""), name="company_tax_id_not_blank"),
            models.CheckConstraint(
                condition=models.Q(company_type__in=CompanyType.values),
                name="company_type_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=CompanyStatus.values), name="company_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["company_type", "status"], name="company_type_status_idx"),
            models.Index(fields=["deleted_at"], name="company_deleted_at_idx"),
        ]

    # update/delete/bulk_* invalidate the caches (chefops/cachewrites.py)
    objects: ClassVar[models.Manager[Company]] = cachewrites.CompanyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.company_type})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        self.tax_id = self.tax_id.strip() if self.tax_id else None
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.status == CompanyStatus.ACTIVE and self.deleted_at is None


class CateringProfile(models.Model):
    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, primary_key=True, related_name="catering_profile"
    )
    daily_capacity = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(daily_capacity__gte=1), name="catering_capacity_positive"
            )
        ]

    def __str__(self) -> str:
        return f"Catering profile of {self.company_id}"


class ClientProfile(models.Model):
    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, primary_key=True, related_name="client_profile"
    )
    work_mode = models.CharField(max_length=16, choices=WorkMode.choices, default=WorkMode.HYBRID)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(work_mode__in=WorkMode.values), name="client_work_mode_valid"
            )
        ]

    def __str__(self) -> str:
        return f"Client profile of {self.company_id}"


class ClientOfficeDay(models.Model):
    """One office weekday of a client (1 = Monday … 7 = Sunday); rows keep insertion order."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="office_days")
    day_of_week = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "day_of_week"], name="office_day_unique"),
            models.CheckConstraint(
                condition=models.Q(day_of_week__gte=1, day_of_week__lte=7),
                name="office_day_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.company_id}: {self.day_of_week}"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_queryset(self) -> models.QuerySet[User]:
        # update/delete/bulk_* invalidate the caches (chefops/cachewrites.py)
        return cachewrites.UserQuerySet(self.model, using=self._db)

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("Users must have an e-mail address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("name", "Platform admin")
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in. Company users have a role; platform staff have no company."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)  # always lower case
    name = models.CharField(max_length=255, blank=True, default="")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EMPLOYEE)
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, null=True, blank=True, related_name="users"
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # Access tokens issued before this second are refused (set by a password reset, so a
    # stolen access token dies with the stolen password instead of living out its 15 min).
    tokens_valid_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="user_email_lower"
            ),
            models.CheckConstraint(
                condition=models.Q(company__isnull=False) | models.Q(is_staff=True),
                name="user_company_or_staff",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="user_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class AuthSession(models.Model):
    """One login: the family of refresh tokens produced by rotating the first one.

    Deleting the session revokes every token of the family at once (logout, reuse detection,
    password change or reset). ``expires_at`` follows the newest token, so the daily purge can
    drop whole families whose last token expired.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    remember_me = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["expires_at"], name="auth_session_expires_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="auth_session_expires_after_created",
            )
        ]

    def __str__(self) -> str:
        return f"Session {self.id} of {self.user_id}"


class RefreshToken(models.Model):
    """A refresh token, stored only as the SHA-256 of its raw 64-hex value.

    ``used_at`` marks a token already exchanged by a rotation; presenting it again is reuse.
    """

    session = models.ForeignKey(AuthSession, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["expires_at"], name="refresh_token_expires_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="refresh_token_expires_after_created",
            ),
            models.CheckConstraint(
                condition=Exact(Length("token_hash"), 64), name="refresh_token_hash_len"
            ),
        ]

    def __str__(self) -> str:
        return f"Refresh token {self.pk} (session {self.session_id})"


class OneTimeTokenPurpose(models.TextChoices):
    PASSWORD_RESET = "PASSWORD_RESET"  # noqa: S105 - not a secret
    INVITATION = "INVITATION"


class OneTimeToken(models.Model):
    """A single-use password-setting token (reset 15 min, invitation 72 h), SHA-256 stored.

    The raw value is never stored: it is ``HMAC(SECRET_KEY, id:nonce)``, so the e-mail
    handler can re-derive it from the row named in the outbox event (see services).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="one_time_tokens")
    purpose = models.CharField(max_length=32, choices=OneTimeTokenPurpose.choices)
    nonce = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["expires_at"], name="one_time_token_expires_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(purpose__in=OneTimeTokenPurpose.values),
                name="one_time_token_purpose_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="one_time_token_expires_after_created",
            ),
            models.CheckConstraint(
                condition=Exact(Length("token_hash"), 64), name="one_time_token_hash_len"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} token {self.id} of {self.user_id}"
