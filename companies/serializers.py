"""Input (strict, class-validator style messages) and output (exact wire keys) serializers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from chefops.api import fields
from chefops.api.fields import ApiDateTimeField
from chefops.api.serializers import StrictSerializer
from companies.models import CompanyStatus, CompanyType, Role, WorkMode

Checks = list[tuple[str, Callable[[Any], bool], str]]

MAX_DAILY_CAPACITY = 1_000_000
PASSWORD_MAX_LENGTH = 128
NEW_PASSWORD_TOO_SHORT = "New password must be at least 8 characters long"  # noqa: S105 - not a secret


def _only_for(kind: type | tuple[type, ...], checks: Checks, keys: set[str]) -> Checks:
    """Upper bounds report only on values of the right type: a missing field gets the
    original's messages, not an extra "must be shorter than" line."""

    def guarded(passes: Callable[[Any], bool]) -> Callable[[Any], bool]:
        return lambda v: not isinstance(v, kind) or isinstance(v, bool) or passes(v)

    return [(k, guarded(p) if k in keys else p, m) for k, p, m in checks]


class TextField(fields.StringField):
    def checks(self) -> Checks:
        return _only_for(str, super().checks(), {"max_length"})


class BoundedIntegerField(fields.IntegerField):
    def checks(self) -> Checks:
        return _only_for((int, float), super().checks(), {"max"})


class LenientBooleanField(fields.ApiField):
    """``rememberMe``: the original turns any present value into ``value === true ||
    value === 'true'``, so it never fails validation."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def checks(self) -> Checks:
        return []

    def convert(self, value: Any) -> bool:
        return value is True or value == "true"


def password_field(*, min_length: int, message: str | None = None, **kwargs: Any) -> TextField:
    return TextField(
        min_length=min_length,
        max_length=PASSWORD_MAX_LENGTH,
        messages={"min_length": message} if message else None,
        **kwargs,
    )


# --- auth inputs -----------------------------------------------------------------------------


class LoginInput(StrictSerializer):
    email = fields.EmailField()
    password = fields.StringField(min_length=6)
    remember_me = LenientBooleanField(required=False)


class RefreshTokenInput(StrictSerializer):
    refresh_token = fields.StringField()


class ChangePasswordInput(StrictSerializer):
    """The reference's text "New password must be at least 8 characters long" does not
    spell the wire name ``newPassword``, so the shared renderer would prefix it; its errors
    are filed under ``__all__`` (same position) to keep the original text."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except ValidationError as exc:
            detail = exc.detail
            if not isinstance(detail, dict) or "new_password" not in detail:
                raise
            raise ValidationError(
                {("__all__" if k == "new_password" else k): v for k, v in detail.items()}
            ) from exc

    old_password = fields.StringField(not_empty=True)
    new_password = password_field(min_length=8, message=NEW_PASSWORD_TOO_SHORT)
    password_confirmation = fields.StringField(not_empty=True)


class ForgotPasswordInput(StrictSerializer):
    email = fields.EmailField()


class ResetPasswordInput(StrictSerializer):
    token = fields.StringField(not_empty=True)
    password = password_field(min_length=8, message=NEW_PASSWORD_TOO_SHORT)


# --- company inputs --------------------------------------------------------------------------


def _name(**kwargs: Any) -> TextField:
    return TextField(not_empty=True, max_length=255, **kwargs)


def _tax_id(**kwargs: Any) -> TextField:
    return TextField(max_length=64, required=False, allow_null=True, **kwargs)


def _status() -> fields.ChoiceField:
    return fields.ChoiceField(choices=CompanyStatus.values, required=False)


def _daily_capacity(**kwargs: Any) -> BoundedIntegerField:
    return BoundedIntegerField(min_value=1, max_value=MAX_DAILY_CAPACITY, **kwargs)


def _office_days(*, min_size: int | None, **kwargs: Any) -> fields.IntArrayField:
    return fields.IntArrayField(min_size=min_size, min_value=1, max_value=7, unique=True, **kwargs)


class CateringCreateInput(StrictSerializer):
    name = _name()
    email = fields.EmailField()
    password = password_field(min_length=8)
    tax_id = _tax_id()
    daily_capacity = _daily_capacity()


class ClientCreateInput(StrictSerializer):
    name = _name()
    email = fields.EmailField()
    password = password_field(min_length=8)
    tax_id = _tax_id()
    work_mode = fields.ChoiceField(choices=WorkMode.values)
    office_days = _office_days(min_size=1)


class CateringUpdateInput(StrictSerializer):
    name = _name(required=False)
    tax_id = _tax_id()
    daily_capacity = _daily_capacity(required=False)
    status = _status()


class ClientUpdateInput(StrictSerializer):
    name = _name(required=False)
    tax_id = _tax_id()
    work_mode = fields.ChoiceField(choices=WorkMode.values, required=False)
    office_days = _office_days(min_size=None, required=False)
    status = _status()


# --- user inputs -----------------------------------------------------------------------------


class UserCreateInput(StrictSerializer):
    email = fields.EmailField()
    name = TextField(max_length=255)
    role = fields.ChoiceField(choices=Role.values)


class UserUpdateInput(StrictSerializer):
    email = fields.EmailField(required=False)
    name = TextField(max_length=255, required=False)
    role = fields.ChoiceField(choices=Role.values, required=False)
    is_active = fields.BooleanField(required=False)


# --- outputs ---------------------------------------------------------------------------------


class _CompanyOutput(serializers.Serializer):
    id = serializers.UUIDField()
    company_type = serializers.ChoiceField(choices=CompanyType.values)
    name = serializers.CharField()
    email = serializers.EmailField()
    tax_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=CompanyStatus.values)
    created_at = ApiDateTimeField()
    updated_at = ApiDateTimeField()


def _profile(company: Any, attribute: str) -> Any:
    # A company created in the admin without its profile still renders (nulls), never 500s.
    return getattr(company, attribute, None)


class CateringOutput(_CompanyOutput):
    daily_capacity = serializers.SerializerMethodField()

    # null for a company created in the admin without its profile.
    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_daily_capacity(self, company: Any) -> int | None:
        profile = _profile(company, "catering_profile")
        return profile.daily_capacity if profile else None


class ClientOutput(_CompanyOutput):
    work_mode = serializers.SerializerMethodField()
    office_days = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=WorkMode.values, allow_null=True))
    def get_work_mode(self, company: Any) -> str | None:
        profile = _profile(company, "client_profile")
        return profile.work_mode if profile else None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_office_days(self, company: Any) -> list[int]:
        return [day.day_of_week for day in company.office_days.all()]


def company_output(company: Any) -> dict[str, Any]:
    serializer = CateringOutput if company.company_type == CompanyType.CATERING else ClientOutput
    return dict(serializer(company).data)


class UserOutput(serializers.Serializer):
    id = serializers.UUIDField()
    company_id = serializers.UUIDField(allow_null=True)
    email = serializers.EmailField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.values)
    is_active = serializers.BooleanField()
    created_at = ApiDateTimeField()
    updated_at = ApiDateTimeField()


class LoginCompanyOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    email = serializers.EmailField()
    company_type = serializers.ChoiceField(choices=CompanyType.values)


class LoginUserOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.values)


class TokensOutput(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Access token lifetime in seconds.")
    company = LoginCompanyOutput()
    user = LoginUserOutput()


class MessageOutput(serializers.Serializer):
    message = serializers.CharField()


class SessionStatusOutput(serializers.Serializer):
    is_active = serializers.BooleanField()
    last_activity_at = ApiDateTimeField()


class SeedCredentialsOutput(serializers.Serializer):
    password = serializers.CharField()
    catering = serializers.ListField(child=serializers.EmailField())
    clients = serializers.ListField(child=serializers.EmailField())


class SeedUserOutput(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.values)
    company = serializers.CharField()
    company_type = serializers.ChoiceField(choices=CompanyType.values)


class SeedOutput(serializers.Serializer):
    message = serializers.CharField()
    credentials = SeedCredentialsOutput()
    users = SeedUserOutput(many=True)
    summary = serializers.ListField(child=serializers.CharField())
