"""Django admin for platform staff: companies, users (custom UserAdmin, e-mail as the
username), and read-only views of sessions and one-time tokens.

Every domain write goes through companies.services, like the API (chefops/service_admin.py
shows a refusal on the page):

* companies: creation is a registration (``company_register``: the company, its profile and
  its first ADMIN user, ``company.registered``); the change form (name, contact e-mail, tax
  id, status, profile) is ``company_update`` — ACTIVE on a soft-deleted company undeletes it
  within 30 days; the actions deactivate, soft delete and undelete. Companies are never
  hard-deleted here: the retention purge archives them 30 days after a soft delete.
* company users: creation is an invitation (``user_invite``: no password, the invitation
  e-mail sets it); e-mail, name, role and active flag are ``user_update`` (the last active
  ADMIN stays; a deactivated user loses its sessions); deleting is ``user_delete``; a user's
  company is fixed once created. Setting a password is ``user_password_set`` (every session
  revoked), for every account.
* staff-only fields (``is_staff``, ``is_superuser``, groups, permissions) and platform staff
  accounts (no company) are platform authorisation, not tenant data: no service, no event;
  they are written by the admin itself (the principal cache follows the save).
"""

from __future__ import annotations

import contextvars
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    UserChangeForm,
)
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from chefops.api.errors import DomainError
from chefops.service_admin import ServiceAdminMixin, acting_staff, copy_fields, refusal_text
from companies import services
from companies.models import (
    AuthSession,
    ClientOfficeDay,
    Company,
    CompanyType,
    OneTimeToken,
    RefreshToken,
    User,
    WorkMode,
)

WEEKDAY_CHOICES = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (7, "Sunday"),
]
PROFILE_FIELDS = ("daily_capacity", "work_mode", "office_days")


class CompanyUserInline(admin.TabularInline):
    model = User
    fields = ("email", "name", "role", "is_active", "last_activity_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _CompanyForm(forms.ModelForm):
    """The company's own fields and its profile's (the API's PATCH fields), one form."""

    daily_capacity = forms.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    work_mode = forms.ChoiceField(choices=WorkMode.choices, required=False)
    office_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean_email(self) -> str:
        return str(self.cleaned_data.get("email") or "").strip().lower()

    def _company_type(self) -> str:
        return str(self.instance.company_type)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        company_type = self._company_type()
        if (
            company_type == CompanyType.CATERING
            and "daily_capacity" in self.fields
            and cleaned.get("daily_capacity") is None
        ):
            self.add_error("daily_capacity", "A catering company needs a daily capacity.")
        if company_type == CompanyType.CLIENT and not cleaned.get("work_mode"):
            cleaned["work_mode"] = WorkMode.HYBRID
        return cleaned


class CompanyChangeForm(_CompanyForm):
    class Meta:
        model = Company
        fields = ("name", "email", "tax_id", "status")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        company = self.instance
        if company.company_type == CompanyType.CATERING:
            profile = getattr(company, "catering_profile", None)
            self.initial.setdefault("daily_capacity", profile and profile.daily_capacity)
        else:
            profile = getattr(company, "client_profile", None)
            self.initial.setdefault("work_mode", profile.work_mode if profile else None)
            self.initial.setdefault(
                "office_days",
                list(
                    ClientOfficeDay.objects.filter(company=company).values_list(
                        "day_of_week", flat=True
                    )
                ),
            )


class CompanyAddForm(_CompanyForm):
    """A registration, as ``POST /api/caterings|clients``: the e-mail and password are also
    the login of the company's first ADMIN user."""

    password1 = forms.CharField(
        label="Password of the first ADMIN user", strip=False, widget=forms.PasswordInput
    )
    password2 = forms.CharField(
        label="Password confirmation", strip=False, widget=forms.PasswordInput
    )

    class Meta:
        model = Company
        fields = ("company_type", "name", "email", "tax_id")

    def _company_type(self) -> str:
        return str(self.cleaned_data.get("company_type") or "")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two password fields didn't match.")
        return cleaned


@admin.register(Company)
class CompanyAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = CompanyChangeForm
    add_form = CompanyAddForm
    list_display = ("name", "company_type", "email", "tax_id", "status", "deleted_at", "created_at")
    list_filter = ("company_type", "status", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "email", "tax_id")
    readonly_fields = ("id", "company_type", "deleted_at", "created_at", "updated_at")
    ordering = ("-created_at",)
    actions = ("deactivate", "soft_delete", "undelete")
    inlines = (CompanyUserInline,)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return (
                (None, {"fields": ("company_type", "name", "email", "tax_id")}),
                ("First ADMIN user", {"fields": ("password1", "password2")}),
                ("Profile", {"fields": PROFILE_FIELDS}),
            )
        profile = (
            ("daily_capacity",)
            if obj.company_type == CompanyType.CATERING
            else ("work_mode", "office_days")
        )
        return (
            (None, {"fields": ("id", "company_type", "name", "email", "tax_id")}),
            ("Status", {"fields": ("status", "deleted_at")}),
            ("Profile", {"fields": profile}),
            ("History", {"fields": ("created_at", "updated_at")}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return self.readonly_fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Soft delete (the action) keeps the company restorable for 30 days; the retention
        # purge archives and removes it afterwards. A hard delete here would skip both.
        return False

    def save_model(self, request: HttpRequest, obj: Company, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            catering = data["company_type"] == CompanyType.CATERING
            saved = services.company_register(
                company_type=data["company_type"],
                name=data["name"],
                email=data["email"],
                password=data["password1"],
                tax_id=data.get("tax_id"),
                daily_capacity=data.get("daily_capacity") if catering else None,
                work_mode=None if catering else data.get("work_mode"),
                office_days=None if catering else data.get("office_days") or [],
            )
        else:
            fields = ("name", "email", "tax_id", "status", *PROFILE_FIELDS)
            changes = {f: data[f] for f in fields if f in form.changed_data and f in data}
            if "tax_id" in changes:
                changes["tax_id"] = changes["tax_id"] or None
            saved = services.company_update(
                actor=acting_staff(request),
                company_id=obj.pk,
                company_type=obj.company_type,
                data=changes,
            )
        copy_fields(obj, saved)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The users inline is read-only and the company has no many-to-many: nothing to save
        # beside what the service wrote (the change message reads these lists).
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def _run(self, request: HttpRequest, queryset: QuerySet[Company], action: Any) -> None:
        done = 0
        for company in queryset:
            try:
                action(actor=acting_staff(request), company=company)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{company.name}: {refusal_text(exc)}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} company(ies) updated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected companies")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        self._run(
            request,
            queryset,
            lambda actor, company: services.company_deactivate(actor=actor, company_id=company.pk),
        )

    @admin.action(description="Soft delete selected companies (restorable for 30 days)")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        self._run(
            request,
            queryset,
            lambda actor, company: services.company_soft_delete(
                actor=actor, company_id=company.pk, company_type=company.company_type
            ),
        )

    @admin.action(description="Undelete / reactivate selected companies (within 30 days)")
    def undelete(self, request: HttpRequest, queryset: QuerySet[Company]) -> None:
        self._run(
            request,
            queryset,
            lambda actor, company: services.company_undelete(actor=actor, company_id=company.pk),
        )


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
        has_company = (
            cleaned.get("company") if "company" in self.fields else self.instance.company_id
        )
        if not has_company and not cleaned.get("is_staff"):
            raise forms.ValidationError("A user needs a company, unless it is platform staff.")
        return cleaned


class StaffUserCreationForm(_UserFormRules, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "company", "role", "is_staff")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # validate_passwords (AdminUserCreationForm.clean) turned the radio into this flag.
        if cleaned.get("company") and cleaned.get("set_usable_password"):
            self.add_error(
                "usable_password",
                "A company user is invited: the invitation e-mail lets them set their own "
                "password. Choose “Disabled”.",
            )
        return cleaned


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


# The staff member acting in the password form (whose save() has no request).
_password_actor: contextvars.ContextVar[User] = contextvars.ContextVar("password_actor")


class StaffPasswordForm(AdminPasswordChangeForm):
    def save(self, commit: bool = True) -> Any:
        password = (
            self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        )
        saved = services.user_password_set(
            actor=_password_actor.get(), user_id=self.user.pk, password=password
        )
        # The view keeps the session of staff who changed their own password with this
        # object's hash (update_session_auth_hash): it must be the new one.
        self.user.password = saved.password
        return self.user


USER_SERVICE_FIELDS = ("email", "name", "role", "is_active")
STAFF_ONLY_FIELDS = ("is_staff", "is_superuser")


@admin.register(User)
class UserAdmin(ServiceAdminMixin, DjangoUserAdmin):
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    change_password_form = StaffPasswordForm
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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            # Moving a person to another company has no service (its rules would be the
            # last-ADMIN rule on both sides, sessions, history): invite them there instead.
            return (*self.readonly_fields, "company")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        data = form.cleaned_data
        company = obj.company_id
        if company is None:
            super().save_model(request, obj, form, change)  # platform staff: no tenant rules
            return
        if not change:
            saved = services.user_invite(
                actor=acting_staff(request),
                email=data["email"],
                name=data.get("name") or "",
                role=data["role"],
                company_id=company,
            )
        else:
            changes = {f: data[f] for f in USER_SERVICE_FIELDS if f in form.changed_data}
            saved = (
                services.user_update(actor=acting_staff(request), user_id=obj.pk, data=changes)
                if changes
                else User.objects.get(pk=obj.pk)
            )
        staff_fields = [f for f in STAFF_ONLY_FIELDS if f in form.changed_data]
        copy_fields(obj, saved)
        if staff_fields:
            for field in staff_fields:
                setattr(obj, field, data[field])
            obj.save(update_fields=[*staff_fields, "updated_at"])

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        if obj.company_id is None:
            super().delete_model(request, obj)
        else:
            services.user_delete(actor=acting_staff(request), user_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        # One by one through the service; a refusal undoes them all (ServiceAdminMixin).
        for user in queryset.order_by("created_at", "id"):
            self.delete_model(request, user)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        token = _password_actor.set(acting_staff(request))
        try:
            return super().user_change_password(request, id, form_url)
        except DomainError as exc:
            self.message_user(request, refusal_text(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        finally:
            _password_actor.reset(token)


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
