"""Contract admin: lists, filters, search, weekday inline, and transitions as actions.

Every write goes through contracts.services, so the admin checks the same rules and emits the
same outbox events as the API (the acting staff user is in the event metadata): creation
(``contract_create``), the terms and weekdays of an existing contract (``contract_update_terms``,
``contract.updated``) and the pause / resume / terminate actions. A refusal is shown on the
page (chefops/service_admin.py). Status and parties are read-only once a contract exists
(status changes only by transition); a TERMINATED contract is read-only altogether; nothing is
deleted (contracts are terminated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chefops.api.errors import DomainError
from chefops.service_admin import ServiceAdminMixin, acting_staff, copy_fields, refusal_text
from companies.models import Company, CompanyType
from contracts import rules, services
from contracts.models import Contract, ContractStatus, ContractWeekday

WEEKDAY_CHOICES = [
    (1, "1 · Monday"),
    (2, "2 · Tuesday"),
    (3, "3 · Wednesday"),
    (4, "4 · Thursday"),
    (5, "5 · Friday"),
    (6, "6 · Saturday"),
    (7, "7 · Sunday"),
]


class ContractWeekdayForm(forms.ModelForm):
    day_of_week = forms.TypedChoiceField(choices=WEEKDAY_CHOICES, coerce=int)

    class Meta:
        model = ContractWeekday
        fields = ("day_of_week",)


class ContractWeekdayInline(admin.TabularInline):
    model = ContractWeekday
    form = ContractWeekdayForm
    extra = 0
    min_num = 1
    max_num = 7
    verbose_name = "service day"
    verbose_name_plural = "service days (in the order the API returns them)"

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # The admin passes min_num but not validate_min: without it, zero days would pass.
        kwargs.setdefault("validate_min", True)
        return super().get_formset(request, obj, **kwargs)


class ContractAdminForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = (
            "catering_company",
            "client_company",
            "start_date",
            "end_date",
            "price_per_service",
            "flexible_quantity",
            "min_daily_quantity",
            "max_daily_quantity",
            "notice_period_hours",
        )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.instance._state.adding:
            self._clean_parties(cleaned)
        return cleaned

    def _clean_parties(self, cleaned: dict[str, Any]) -> None:
        catering: Company | None = cleaned.get("catering_company")
        client: Company | None = cleaned.get("client_company")
        if catering is not None and (
            reason := rules.catering_company_error(
                name=catering.name, company_type=catering.company_type, is_active=catering.is_active
            )
        ):
            self.add_error("catering_company", reason)
            catering = None
        if client is not None and (
            reason := rules.client_company_error(
                name=client.name, company_type=client.company_type, is_active=client.is_active
            )
        ):
            self.add_error("client_company", reason)
            client = None
        # The model's conditional unique constraint cannot be checked here (status is not a
        # form field), so the one-ACTIVE-per-pair rule is checked explicitly.
        if (
            catering is not None
            and client is not None
            and Contract.objects.filter(
                catering_company=catering, client_company=client, status=ContractStatus.ACTIVE
            ).exists()
        ):
            raise forms.ValidationError(
                rules.active_pair_conflict_message(catering.name, client.name)
            )


@admin.register(Contract)
class ContractAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ContractAdminForm
    inlines = [ContractWeekdayInline]
    list_display = (
        "short_id",
        "catering_company",
        "client_company",
        "status",
        "price_per_service",
        "min_daily_quantity",
        "max_daily_quantity",
        "start_date",
        "end_date",
        "created_at",
    )
    list_filter = (
        "status",
        ("catering_company", admin.RelatedOnlyFieldListFilter),
        ("client_company", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("catering_company__name", "client_company__name")
    list_select_related = ("catering_company", "client_company")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    actions = ["pause_contracts", "resume_contracts", "terminate_contracts"]
    readonly_fields = ("id", "status", "created_at", "updated_at")

    @admin.display(description="Contract", ordering="id")
    def short_id(self, obj: Contract) -> str:
        return str(obj.pk)[:8]

    def get_readonly_fields(self, request: HttpRequest, obj: Contract | None = None) -> Any:
        if obj is not None:
            return (*self.readonly_fields, "catering_company", "client_company")
        return self.readonly_fields

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        wanted = {"catering_company": CompanyType.CATERING, "client_company": CompanyType.CLIENT}
        if db_field.name in wanted:
            kwargs["queryset"] = Company.objects.filter(
                company_type=wanted[db_field.name]
            ).order_by("name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Contract | None = None) -> bool:
        # Contracts are terminated, not deleted: their service days and events are history.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Contract | None = None) -> bool:
        # A TERMINATED contract's terms are history (the service refuses them too).
        if obj is not None and obj.status == ContractStatus.TERMINATED:
            return False
        return super().has_change_permission(request, obj)

    # --- writes through the services ------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Contract, form: Any, change: bool) -> None:
        # Written in save_related, once the weekdays of the inline are known.
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        days = [
            inline_form.cleaned_data["day_of_week"]
            for formset in formsets
            for inline_form in formset.forms
            if inline_form.cleaned_data and not inline_form.cleaned_data.get("DELETE")
        ]
        data = form.cleaned_data
        instance: Contract = form.instance
        if change:
            terms = {field: data[field] for field in services.TERM_FIELDS if field in data}
            saved = services.contract_update_terms(
                contract_id=instance.pk,
                actor=acting_staff(request),
                data={**terms, "service_days": days},
            )
        else:
            saved = services.contract_create(
                actor=acting_staff(request),
                catering_company_id=data["catering_company"].pk,
                client_company_id=data["client_company"].pk,
                start_date=data.get("start_date"),
                end_date=data.get("end_date"),
                price_per_service=data["price_per_service"],
                flexible_quantity=data.get("flexible_quantity", True),
                min_daily_quantity=data["min_daily_quantity"],
                max_daily_quantity=data["max_daily_quantity"],
                notice_period_hours=data["notice_period_hours"],
                service_days=days,
            )
        # The admin logs and redirects with form.instance and reads what the formsets saved:
        # make them describe what the service wrote.
        weekdays = list(saved.weekdays.all())
        for formset in formsets:
            formset.new_objects = [] if change else weekdays
            formset.changed_objects = []
            formset.deleted_objects = []
        copy_fields(instance, saved)

    # --- transitions ------------------------------------------------------------------------

    def _transition(
        self,
        request: HttpRequest,
        queryset: QuerySet[Contract],
        service: Callable[..., Contract],
        verb: str,
    ) -> None:
        done = 0
        refused: list[str] = []
        for contract_id in queryset.order_by("created_at", "id").values_list("pk", flat=True):
            try:
                service(contract_id=contract_id, actor=acting_staff(request))
            except DomainError as exc:
                refused.append(f"{str(contract_id)[:8]}: {refusal_text(exc)}")
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} contract(s) {verb}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not {verb}: " + "; ".join(refused), messages.ERROR)

    @admin.action(description="Pause selected contracts")
    def pause_contracts(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._transition(request, queryset, services.contract_pause, "paused")

    @admin.action(description="Resume selected contracts")
    def resume_contracts(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._transition(request, queryset, services.contract_resume, "resumed")

    @admin.action(description="Terminate selected contracts")
    def terminate_contracts(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._transition(request, queryset, services.contract_terminate, "terminated")
