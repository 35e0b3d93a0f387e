"""Transactional outbox: domain events stored with the change that caused them."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class EventStatus(models.TextChoices):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    DEAD = "DEAD"


# Not yet delivered: these hold back younger events of the same aggregate.
OPEN_STATUSES = (EventStatus.PENDING, EventStatus.PROCESSING)


class OutboxEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100)
    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["created_at", "id"]
        # Every status change writes a new row version into each index, twice per event, so
        # the set is kept small: the claim (due PENDING), the per-aggregate order check and
        # aggregate look-ups, retention by processed_at, and status + age (stale PROCESSING
        # claims, DEAD, backlog age, the admin's status filter).
        indexes = [
            models.Index(
                fields=["next_attempt_at", "created_at"],
                condition=models.Q(status="PENDING"),
                name="outbox_pending_due_idx",
            ),
            models.Index(
                fields=["aggregate_type", "aggregate_id", "created_at"], name="outbox_aggregate_idx"
            ),
            models.Index(
                fields=["processed_at"],
                condition=models.Q(status="PROCESSED"),
                name="outbox_processed_at_idx",
            ),
            models.Index(fields=["status", "created_at"], name="outbox_status_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=EventStatus.values), name="outbox_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id} [{self.status}]"


class ProcessedEvent(models.Model):
    """Ledger of (event, handler) pairs already applied: the idempotency key of handlers."""

    event_id = models.UUIDField()
    handler_name = models.CharField(max_length=200)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "handler_name"], name="processed_event_unique"
            ),
        ]
        indexes = [models.Index(fields=["processed_at"], name="processed_event_at_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} / {self.handler_name}"
