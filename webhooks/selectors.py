"""Reads of webhooks. Every read that serves a company takes it: another company's endpoint
is a 404, never a leak. ``company=None`` is platform staff (admin, commands)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from chefops.api.errors import NotFound
from companies.models import Company, Role, User
from contracts.models import Contract
from servicedays.models import ServiceDay
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

ENDPOINT_NOT_FOUND = "Webhook endpoint not found"
DELIVERY_NOT_FOUND = "Webhook delivery not found"


def webhook_endpoint_list(*, company: Company) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(company=company).order_by("-created_at", "id")


def webhook_endpoint_get(*, company: Company | None, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoints = WebhookEndpoint.objects.all()
    if company is not None:
        endpoints = endpoints.filter(company=company)
    endpoint = endpoints.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(ENDPOINT_NOT_FOUND)
    return endpoint


def webhook_delivery_list(*, company: Company, endpoint_id: uuid.UUID) -> QuerySet[WebhookDelivery]:
    endpoint = webhook_endpoint_get(company=company, endpoint_id=endpoint_id)
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "id")


def webhook_delivery_get(
    *, company: Company | None, delivery_id: uuid.UUID, endpoint_id: uuid.UUID | None = None
) -> WebhookDelivery:
    deliveries = WebhookDelivery.objects.select_related("endpoint")
    if company is not None:
        deliveries = deliveries.filter(endpoint__company=company)
    if endpoint_id is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    delivery = deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound(DELIVERY_NOT_FOUND)
    return delivery


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def party_endpoints_of_event(*, aggregate_type: str, aggregate_id: str) -> list[WebhookEndpoint]:
    """The active endpoints of the companies an event concerns, in one query. The parties
    come from the database (not from the payload): a contract's caterer and client, a
    service day's through its contract, a company itself. Anything else (or an aggregate
    that no longer exists) concerns nobody."""
    pk = _as_uuid(aggregate_id)
    if pk is None:
        return []
    parties: Q
    if aggregate_type == "Contract":
        contract = Contract.objects.filter(pk=pk)
        parties = Q(company_id__in=contract.values("catering_company_id")) | Q(
            company_id__in=contract.values("client_company_id")
        )
    elif aggregate_type == "ServiceDay":
        day = ServiceDay.objects.filter(pk=pk)
        parties = Q(company_id__in=day.values("contract__catering_company_id")) | Q(
            company_id__in=day.values("contract__client_company_id")
        )
    elif aggregate_type == "company":
        parties = Q(company_id=pk)
    else:
        return []
    return list(
        WebhookEndpoint.objects.filter(parties, is_active=True).order_by("created_at", "id")
    )


def company_admin_emails(*, company_id: Any) -> list[str]:
    return list(
        User.objects.filter(company_id=company_id, is_active=True, role=Role.ADMIN)
        .order_by("email")
        .values_list("email", flat=True)
    )


def due_delivery_ids(
    *, now: datetime | None = None, limit: int, requeue_after: timedelta
) -> list[uuid.UUID]:
    """PENDING deliveries of active endpoints whose time has come, that no worker holds and
    whose task (if one was queued) was queued more than ``requeue_after`` ago."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        )
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - requeue_after))
        .exclude(locked_until__gt=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_backlog(*, now: datetime | None = None) -> tuple[int, float, int]:
    """(due deliveries not sent yet, age in seconds of the oldest, disabled endpoints)."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
    )
    figures = due.aggregate(oldest=Min("next_attempt_at"))
    count = due.count()
    oldest = figures["oldest"]
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    disabled = WebhookEndpoint.objects.filter(disabled_at__isnull=False, is_active=False).count()
    return count, age, disabled
