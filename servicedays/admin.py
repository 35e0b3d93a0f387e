"""Admin for service days: browse and search; quantities change only through the services."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict

from chefops import readcache
from servicedays.models import ServiceDay

CONFIRMATION_FIELDS = (
    "expected_quantity",
    "expected_confirmed_at",
    "served_quantity",
    "served_confirmed_at",
    "status",
)


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
class ServiceDayAdmin(admin.ModelAdmin):
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
    raw_id_fields = ("contract",)
    readonly_fields = (*CONFIRMATION_FIELDS, "id", "created_at", "updated_at")
    ordering = ("-service_date",)
    list_per_page = 100
    show_full_result_count = False  # COUNT(*) over a million rows on every page is wasted

    def get_readonly_fields(self, request: HttpRequest, obj: ServiceDay | None = None) -> Any:
        if obj is not None:
            return (*self.readonly_fields, "contract", "service_date")
        return self.readonly_fields

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

    # Deletes bypass the save signal (servicedays/signals.py): the read cache of both parties
    # is invalidated here.
    def delete_model(self, request: HttpRequest, obj: ServiceDay) -> None:
        parties = [obj.contract.catering_company_id, obj.contract.client_company_id]
        super().delete_model(request, obj)
        readcache.invalidate(parties)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ServiceDay]) -> None:
        parties = set(
            queryset.values_list("contract__catering_company_id", "contract__client_company_id")
        )
        super().delete_queryset(request, queryset)
        readcache.invalidate({company for pair in parties for company in pair})
