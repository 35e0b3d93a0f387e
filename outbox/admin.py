"""Admin for operators: the events (read-only, retry/dispatch actions) and the handler ledger."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from outbox.models import EventStatus, OutboxEvent, ProcessedEvent
from outbox.selectors import outbox_aggregate_types, outbox_event_types_of_interest
from outbox.services import outbox_dead_events_retry, outbox_events_expedite


def _as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the retention purge removes events, in batches


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t, t) for t in outbox_event_types_of_interest()]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent]
    ) -> QuerySet[OutboxEvent]:
        value = self.value()
        return queryset.filter(event_type=value) if value else queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(_ReadOnlyAdmin):
    list_display = [
        "created_at",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "status",
        "attempts",
        "next_attempt_at",
        "processed_at",
    ]
    list_filter = ["status", EventTypeFilter]
    search_fields = ["=aggregate_id"]
    search_help_text = "Aggregate id, Type:aggregate id, or event id (exact)"
    ordering = ["-created_at"]
    # COUNT(*) over millions of processed events would make every page slow.
    show_full_result_count = False
    list_per_page = 100
    actions = ["retry_dead", "dispatch_now"]
    readonly_fields = [
        "id",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "status",
        "attempts",
        "max_attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "processed_at",
        "locked_at",
        "locked_by",
        "payload",
        "metadata",
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent], search_term: str
    ) -> tuple[QuerySet[OutboxEvent], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        aggregate_type, colon, aggregate_id = term.partition(":")
        if colon and aggregate_type and aggregate_id:
            return queryset.filter(aggregate_type=aggregate_type, aggregate_id=aggregate_id), False
        # The aggregate index leads with the type: naming every type keeps the lookup indexed.
        matches = queryset.filter(aggregate_type__in=outbox_aggregate_types(), aggregate_id=term)
        event_id = _as_uuid(term)
        if event_id is not None:
            matches = matches | queryset.filter(pk=event_id)
        return matches, False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("outbox.change_outboxevent")

    @admin.action(description="Retry selected DEAD events", permissions=["retry"])
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = outbox_dead_events_retry(ids=ids)
        level = messages.SUCCESS if count else messages.WARNING
        skipped = len(ids) - count
        self.message_user(
            request,
            f"{count} DEAD events queued for retry; {skipped} skipped (not DEAD).",
            level,
        )

    @admin.action(
        description="Dispatch now (make selected PENDING events due)", permissions=["retry"]
    )
    def dispatch_now(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        ids = list(queryset.filter(status=EventStatus.PENDING).values_list("pk", flat=True))
        count = outbox_events_expedite(ids=ids)
        self.message_user(
            request,
            f"Dispatcher nudged; {count} PENDING events made due now.",
            messages.SUCCESS,
        )


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(_ReadOnlyAdmin):
    list_display = ["event_id", "handler_name", "processed_at"]
    list_filter = ["handler_name"]
    search_fields = ["handler_name"]
    search_help_text = "Event id (exact) or handler name"
    ordering = ["-processed_at"]
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = ["event_id", "handler_name", "processed_at"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ProcessedEvent], search_term: str
    ) -> tuple[QuerySet[ProcessedEvent], bool]:
        event_id = _as_uuid(search_term)
        if event_id is not None:
            return queryset.filter(event_id=event_id), False
        return super().get_search_results(request, queryset, search_term)
