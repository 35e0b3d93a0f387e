"""Reads of the outbox for operators and metrics (platform-wide: the outbox has no tenant)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Count, Min
from django.utils import timezone

from outbox.models import OPEN_STATUSES, EventStatus, OutboxEvent


def outbox_status_counts() -> dict[str, int]:
    """Events per status, every status present (0 when none)."""
    counts = dict.fromkeys(EventStatus.values, 0)
    rows = OutboxEvent.objects.order_by().values_list("status").annotate(n=Count("id"))
    for status, n in rows:
        counts[status] = n
    return counts


def outbox_backlog_count() -> int:
    """Events not delivered yet and not given up: PENDING + PROCESSING."""
    return OutboxEvent.objects.filter(status__in=OPEN_STATUSES).count()


def outbox_oldest_pending_age_seconds(*, now: datetime | None = None) -> float:
    """Age of the oldest undelivered (PENDING or PROCESSING) event; 0.0 when there is none."""
    oldest = OutboxEvent.objects.filter(status__in=OPEN_STATUSES).aggregate(
        oldest=Min("created_at")
    )["oldest"]
    if oldest is None:
        return 0.0
    return max(((now or timezone.now()) - oldest).total_seconds(), 0.0)


def outbox_dead_count() -> int:
    return OutboxEvent.objects.filter(status=EventStatus.DEAD).count()


def outbox_dead_events(*, limit: int = 100) -> list[OutboxEvent]:
    """The oldest DEAD events first (the ones waiting longest for an operator)."""
    return list(
        OutboxEvent.objects.filter(status=EventStatus.DEAD).order_by("created_at", "id")[:limit]
    )


def outbox_aggregate_types() -> list[str]:
    """The distinct aggregate types, read as a loose index scan: one probe of the aggregate
    index per type instead of a pass over every event."""
    table = OutboxEvent._meta.db_table
    sql = f"""
        WITH RECURSIVE types(name) AS (
            SELECT min(aggregate_type) FROM {table}
            UNION ALL
            SELECT (SELECT min(aggregate_type) FROM {table} WHERE aggregate_type > types.name)
            FROM types WHERE types.name IS NOT NULL
        )
        SELECT name FROM types WHERE name IS NOT NULL
    """  # noqa: S608 - only the model's table name is interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def outbox_event_types_of_interest() -> list[str]:
    """Event types an operator filters by: those with a handler, and those of events not
    delivered (PENDING, PROCESSING, DEAD: an indexed, small set). Never a DISTINCT over the
    whole table."""
    from outbox.registry import all_handlers

    known = {t for h in all_handlers() for t in h.event_types if t != "*"}
    undelivered = (
        OutboxEvent.objects.filter(status__in=[*OPEN_STATUSES, EventStatus.DEAD])
        .order_by()
        .values_list("event_type", flat=True)
        .distinct()
    )
    return sorted(known | set(undelivered))
