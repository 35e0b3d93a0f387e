"""Admin for service days: browse and search; staff confirm quantities for a party.

Days are never added or deleted here: the daily job and the parties' generate call create
them (a deleted day would come back at the next generation, or erase what was served), and
the retention purge removes them with their company. Editing is confirming, through the same
services and rules as the API (``service_day_confirm_expected`` / ``_served``, with staff
acting for the client or the caterer: notice deadline, quantity range, ACTIVE contract, served
on or after the day, once each); each emits its outbox event. A quantity is editable only
while its confirmation is still open.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict

from chefops.service_admin import ServiceAdminMixin, acting_staff, copy_fields
from servicedays import services
from servicedays.models import ServiceDay, ServiceDayStatus

QUANTITY_FIELDS = ("expected_quantity", "served_quantity")
READONLY_FIELDS = (
    "id",
    "contract",
    "service_date",
    "expected_confirmed_at",
    "served_confirmed_at",
    "status",
    "created_at",
    "updated_at",
)
# The ``integer`` column's bounds: a larger number is a form error, not a database error.
MAX_QUANTITY = 2**31 - 1


class ServiceDayConfirmForm(forms.ModelForm):
    expected_quantity = forms.IntegerField(
        min_value=0,
        max_value=MAX_QUANTITY,
        required=False,
        help_text="Confirms the expected quantity for the client (before the notice deadline).",
    )
    served_quantity = forms.IntegerField(
        min_value=0,
        max_value=MAX_QUANTITY,
        required=False,
        help_text="Confirms the served quantity for the caterer (on or after the day); final.",
    )

    class Meta:
        model = ServiceDay
        fields = QUANTITY_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        for field in QUANTITY_FIELDS:
            if (
                field in self.changed_data
                and field not in self.errors
                and cleaned.get(field) is None
            ):
                self.add_error(field, "A confirmation gives a number; it cannot be undone.")
        return cleaned


class ContractIdFilter(admin.SimpleListFilter):
    """A text box for a contract id: a choice list of 10,000 contracts would be unusable."""

    title = "contract"
    parameter_name = "contract"
    template = "admin/servicedays/input_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Django shows a filter only when it has choices; the template ignores them.
        return [("", "")]

    def choices(self, changelist: Any) -> Any:
        # The other active filters travel as hidden inputs so the text box combines with them.
        query = QueryDict(changelist.get_query_string(remove=[self.parameter_name, "p"])[1:])
        yield {"query_parts": [(k, v) for k, values in query.lists() for v in values]}

    def queryset(self, request: HttpRequest, queryset: QuerySet[ServiceDay]) -> Any:
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(contract_id=uuid.UUID(value.strip()))
        except ValueError:
            return queryset.none()


@admin.register(ServiceDay)
class ServiceDayAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ServiceDayConfirmForm
    list_display = (
        "service_date",
        "contract",
        "catering_name",
        "client_name",
        "status",
        "expected_quantity",
        "served_quantity",
        "expected_confirmed_at",
        "served_confirmed_at",
    )
    list_filter = ("status", "contract__status", ContractIdFilter)
    date_hierarchy = "service_date"
    search_fields = ("contract__catering_company__name", "contract__client_company__name")
    search_help_text = "A contract or service-day id, or part of a company name"
    list_select_related = ("contract__catering_company", "contract__client_company")
    readonly_fields = READONLY_FIELDS
    ordering = ("-service_date",)
    list_per_page = 100
    show_full_result_count = False  # COUNT(*) over a million rows on every page is wasted

    def get_readonly_fields(self, request: HttpRequest, obj: ServiceDay | None = None) -> Any:
        closed = []
        if (
            obj is None
            or obj.status != ServiceDayStatus.PENDING
            or obj.expected_confirmed_at is not None
            or obj.expected_quantity is not None
        ):
            closed.append("expected_quantity")
        if obj is None or obj.status != ServiceDayStatus.PENDING:
            closed.append("served_quantity")
        return (*self.readonly_fields, *closed)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ServiceDay | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ServiceDay, form: Any, change: bool) -> None:
        data = form.cleaned_data
        day = obj
        # Expected first: both in one save is the client's number, then the caterer's; a
        # refusal of either rolls both back (the admin's transaction).
        if "expected_quantity" in form.changed_data:
            day = services.service_day_confirm_expected(
                service_day_id=obj.pk,
                user=acting_staff(request),
                expected_quantity=data["expected_quantity"],
            )
        if "served_quantity" in form.changed_data:
            day = services.service_day_confirm_served(
                service_day_id=obj.pk,
                user=acting_staff(request),
                served_quantity=data["served_quantity"],
            )
        if day is not obj:
            copy_fields(obj, day)

    @admin.display(description="catering", ordering="contract__catering_company__name")
    def catering_name(self, obj: ServiceDay) -> str:
        return obj.contract.catering_company.name

    @admin.display(description="client", ordering="contract__client_company__name")
    def client_name(self, obj: ServiceDay) -> str:
        return obj.contract.client_company.name

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ServiceDay], search_term: str
    ) -> tuple[QuerySet[ServiceDay], bool]:
        term = search_term.strip()
        try:
            wanted = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        # An id matches exactly (indexed), instead of a text scan over every row.
        return queryset.filter(contract_id=wanted) | queryset.filter(pk=wanted), False
