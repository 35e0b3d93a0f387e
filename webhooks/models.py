"""Webhook endpoints of a company and the deliveries of events to them.

A delivery is one (endpoint, event) pair: its row carries every attempt's outcome, and its
id is the ``webhook-id`` header, stable across retries, so receivers can de-duplicate. The
body is stored as the exact text that is signed and sent, so a retry sends the same bytes.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from companies.models import Company


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    # Event type names; empty = every event type of the catalogue (webhooks.rules).
    event_types = models.JSONField(default=list, blank=True)
    description = models.CharField(max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    # "whsec_" + base64 of 24 random bytes (Standard Webhooks); never shown again after
    # creation or rotation.
    secret = models.CharField(max_length=100)
    # After a rotation the old secret signs too (a second signature) for a day, so receivers
    # can switch without dropping deliveries.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Deliveries given up (every attempt failed) since the last successful attempt.
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Set when the endpoint was switched off for its failures (not by its owner).
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["company", "created_at"], name="webhook_endpoint_company_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({'active' if self.is_active else 'inactive'})"


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING"  # waiting for its first attempt or a retry
    SUCCEEDED = "SUCCEEDED"  # a 2xx answer
    FAILED = "FAILED"  # every attempt failed; given up (a redelivery starts over)


class WebhookDelivery(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The outbox event's id (no foreign key: the outbox purges its events after 30 days); a
    # test event has an id of its own.
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # A worker sending this delivery holds it until then (claim); another one skips it.
    locked_until = models.DateTimeField(null=True, blank=True)
    # When a task was last queued for the current attempt (cleared once it is recorded): the
    # sweep queues a due delivery again only if that is long ago (a lost task), so a backlog
    # does not fill the broker with copies.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True, default="")
    # The start of the last answer's body (at most 4 KiB, NULs removed); never rendered raw.
    last_response_body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="webhook_delivery_endpoint_event_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values),
                name="webhook_delivery_status_valid",
            ),
        ]
        indexes = [
            # The sweep: due PENDING deliveries, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="PENDING"),
                name="webhook_delivery_due_idx",
            ),
            models.Index(fields=["endpoint", "created_at"], name="webhook_delivery_endpoint_idx"),
            # Retention.
            models.Index(fields=["created_at"], name="webhook_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.endpoint_id} [{self.status}]"
