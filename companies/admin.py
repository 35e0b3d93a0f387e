"""Django admin for platform staff: companies (profile and office days inline), users (custom
UserAdmin, e-mail as the username), and read-only views of sessions and one-time tokens.

The "deactivate" and "undelete" actions go through the same services as the API.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from chefops.api.errors import DomainError
from companies import services
from companies.models import (
    AuthSession,
    CateringProfile,
    ClientOfficeDay,
    ClientProfile,
    Company,
    OneTimeToken,
    RefreshToken,
    User,
)


class CateringProfileInline(admin.StackedInline):
    model = CateringProfile
    can_delete = False
    extra = 0
    max_num = 1


class ClientProfileInline(admin.StackedInline):
    model = ClientProfile
    can_delete = False
    extra = 0
    max_num = 1


class ClientOfficeDayInline(admin.TabularInline):
    model = ClientOfficeDay
    extra = 0
    max_num = 7


class CompanyUserInline(admin.TabularInline):
    model = User
    fields = ("email", "name", "role", "is_active", "last_activity_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "company_type", "email", "tax_id", "status", "deleted_at", "created_at")
    list_filter = ("company_type", "status", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "email", "tax_id")
    readonly_fields = ("id", "deleted_at", "created_at", "updated_at")
    ordering = ("-created_at",)
    actions = ("deactivate", "undelete")
    inlines = (CateringProfileInline, ClientProfileInline, ClientOfficeDayInline, CompanyUserInline)

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        instances = super().get_inline_instances(request, obj)
        if obj is None:
            return instances
        unwanted = (
            (ClientProfileInline, ClientOfficeDayInline)
            if obj.company_type == "CATERING"
            else (CateringProfileInline,)
        )
        return [i for i in instances if not isinstance(i, unwanted)]

    def _run(self, request: HttpRequest, queryset: QuerySet[Company], action: Any) -> None:
        assert isinstance(request.user, User)
        done = 0
        for company in queryset:
            try:
                action(actor=request.user, company_id=company.pk)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{company.name}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} company(ies) updated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected companies")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        self._run(request, queryset, services.company_deactivate)

    @admin.action(description="Undelete / reactivate selected companies (within 30 days)")
    def undelete(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        self._run(request, queryset, services.company_undelete)


class _UserFormRules(forms.ModelForm):
    """E-mails are unique without regard to case; a user has a company unless it is staff
    (the database enforces both; the form says so before the database has to)."""

    def clean_email(self) -> str:
        email = str(self.cleaned_data.get("email") or "").strip().lower()
        clash = User.objects.filter(email=email).exclude(pk=self.instance.pk)
        if email and clash.exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not cleaned.get("company") and not cleaned.get("is_staff"):
            raise forms.ValidationError("A user needs a company, unless it is platform staff.")
        return cleaned


class StaffUserCreationForm(_UserFormRules, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "company", "role", "is_staff")


class StaffUserChangeForm(_UserFormRules, UserChangeForm):
    class Meta:
        model = User
        fields = (
            "email",
            "password",
            "name",
            "company",
            "role",
            "is_active",
            "is_staff",
            "is_superuser",
            "groups",
            "user_permissions",
        )


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    list_display = ("email", "name", "company", "role", "is_active", "is_staff", "last_activity_at")
    list_filter = ("role", "is_active", "is_staff", "company__company_type")
    search_fields = ("email", "name", "company__name")
    ordering = ("email",)
    list_select_related = ("company",)
    autocomplete_fields = ("company",)
    readonly_fields = ("last_login", "last_activity_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name", "company", "role")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Activity", {"fields": ("last_login", "last_activity_at", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "email",
                    "name",
                    "company",
                    "role",
                    "is_staff",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Tokens are never created or edited by hand; deleting a row revokes it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuthSession)
class AuthSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "remember_me", "created_at", "last_rotated_at", "expires_at")
    list_filter = ("remember_me",)
    search_fields = ("user__email",)
    list_select_related = ("user",)


@admin.register(RefreshToken)
class RefreshTokenAdmin(ReadOnlyAdmin):
    list_display = ("id", "session", "created_at", "expires_at", "used_at")
    list_filter = (("used_at", admin.EmptyFieldListFilter),)
    search_fields = ("session__user__email",)
    exclude = ("token_hash",)


@admin.register(OneTimeToken)
class OneTimeTokenAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "purpose", "created_at", "expires_at", "used_at")
    list_filter = ("purpose", ("used_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email",)
    list_select_related = ("user",)
    exclude = ("token_hash", "nonce")
