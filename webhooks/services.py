"""Writes of webhooks: endpoints (API, admin, command), deliveries (outbox handler, task,
sweep, redelivery, test event), and the retention purge.

Delivery of one row (``webhook_delivery_attempt``) is: **claim** it (one guarded UPDATE:
PENDING, due, endpoint active, not held by another worker → held for a while), **send** outside
any transaction (one HTTP POST, bounded in time), **record** the outcome guarded by the claim.
Each delivery is its own Celery task, so a slow endpoint holds one worker slot for at most
the timeout and never the others' deliveries, nor the outbox (whose handler only writes rows).
Retries live in the database (``next_attempt_at``); the beat sweep sends the due ones.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from chefops.api.errors import BadRequest, Conflict
from chefops.api.fields import iso_ms
from companies.models import Company
from outbox.models import OutboxEvent
from outbox.services import outbox_event_emit
from webhooks import metrics, rules, selectors, transport
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("chefops.webhooks")

MAX_ENDPOINTS_PER_COMPANY = 20
EVENT_ENDPOINT_DISABLED = "webhooks.endpoint_disabled"
USER_AGENT = "ChefOps-Webhooks/1.0"
SWEEP_LIMIT = 1000
REQUEUE_AFTER = timedelta(minutes=5)
KEEP_DAYS = 30
SECRET_ROTATION_GRACE = timedelta(hours=24)


# --- endpoints ------------------------------------------------------------------------------


def new_secret() -> str:
    return rules.SECRET_PREFIX + base64.b64encode(secrets.token_bytes(rules.SECRET_BYTES)).decode()


def webhook_url_check(url: str) -> str:
    """The URL if it may be subscribed: its form, then (without the opt-in) every address its
    host resolves to. Raises BadRequest with the reason."""
    try:
        parts = rules.parse_target_url(url, allow_http=settings.WEBHOOK_ALLOW_HTTP)
    except rules.UrlRefused as exc:
        raise BadRequest([str(exc)]) from exc
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        try:
            transport.resolve_target(parts, allow_private=False)
        except transport.TargetRefused as exc:
            raise BadRequest([str(exc)]) from exc
    return url


def _event_types_check(event_types: list[str]) -> list[str]:
    unknown = rules.unknown_event_types(event_types)
    if unknown:
        raise BadRequest(
            [
                f"eventTypes: unknown event type {unknown[0][:100]!r}; known: "
                + ", ".join(rules.EVENT_TYPES)
            ]
        )
    return list(dict.fromkeys(event_types))


def webhook_endpoint_create(
    *,
    company: Company,
    url: str,
    event_types: list[str] | None = None,
    description: str = "",
    is_active: bool = True,
) -> WebhookEndpoint:
    """A new endpoint with a new secret (the caller shows it once)."""
    types = _event_types_check(event_types or [])
    webhook_url_check(url)
    with transaction.atomic():
        # The company row serializes creations, so the cap holds under concurrency.
        Company.objects.select_for_update().filter(pk=company.pk).first()
        if WebhookEndpoint.objects.filter(company=company).count() >= MAX_ENDPOINTS_PER_COMPANY:
            raise Conflict(
                f"A company can have at most {MAX_ENDPOINTS_PER_COMPANY} webhook endpoints"
            )
        now = timezone.now()
        return WebhookEndpoint.objects.create(
            company=company,
            url=url,
            event_types=types,
            description=description,
            is_active=is_active,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )


def _locked_endpoint(*, company: Company | None, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = selectors.webhook_endpoint_get(company=company, endpoint_id=endpoint_id)
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


def webhook_endpoint_update(
    *, company: Company | None, endpoint_id: uuid.UUID, data: Mapping[str, Any]
) -> WebhookEndpoint:
    """Change url, eventTypes, description, isActive. Switching an endpoint on again clears
    its failure streak (and the mark of having been disabled for it)."""
    if "event_types" in data:
        data = {**data, "event_types": _event_types_check(list(data["event_types"] or []))}
    if "url" in data:
        webhook_url_check(data["url"])
    with transaction.atomic():
        endpoint = _locked_endpoint(company=company, endpoint_id=endpoint_id)
        fields = ["updated_at"]
        for name in ("url", "event_types", "description", "is_active"):
            if name in data:
                setattr(endpoint, name, data[name])
                fields.append(name)
        if data.get("is_active") is True:
            endpoint.consecutive_failures = 0
            endpoint.disabled_at = None
            fields += ["consecutive_failures", "disabled_at"]
        endpoint.updated_at = timezone.now()
        endpoint.save(update_fields=fields)
    return endpoint


def webhook_endpoint_delete(*, company: Company | None, endpoint_id: uuid.UUID) -> None:
    with transaction.atomic():
        _locked_endpoint(company=company, endpoint_id=endpoint_id).delete()


def webhook_endpoint_rotate_secret(
    *, company: Company | None, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    """A new secret. For SECRET_ROTATION_GRACE the old one signs too (a second signature in
    ``webhook-signature``), so a receiver can switch to the new one without a gap."""
    with transaction.atomic():
        endpoint = _locked_endpoint(company=company, endpoint_id=endpoint_id)
        now = timezone.now()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + SECRET_ROTATION_GRACE
        endpoint.secret = new_secret()
        endpoint.updated_at = now
        endpoint.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
        )
    return endpoint


def webhook_endpoint_disable(
    *, company: Company | None, endpoint_id: uuid.UUID, notify: bool = False
) -> WebhookEndpoint:
    """Switch an endpoint off (operator); ``notify`` e-mails its company's admins too."""
    with transaction.atomic():
        endpoint = _locked_endpoint(company=company, endpoint_id=endpoint_id)
        _disable(endpoint, notify=notify)
    return endpoint


def _disable(endpoint: WebhookEndpoint, *, notify: bool) -> None:
    now = timezone.now()
    endpoint.is_active = False
    endpoint.disabled_at = now
    endpoint.updated_at = now
    endpoint.save(update_fields=["is_active", "disabled_at", "updated_at"])
    if notify:
        outbox_event_emit(
            event_type=EVENT_ENDPOINT_DISABLED,
            aggregate_type="WebhookEndpoint",
            aggregate_id=endpoint.pk,
            payload={
                "webhookEndpointId": str(endpoint.pk),
                "companyId": str(endpoint.company_id),
                "url": endpoint.url,
                "consecutiveFailures": endpoint.consecutive_failures,
                "disabledAt": iso_ms(now),
            },
        )


# --- deliveries: creation -------------------------------------------------------------------


def _enqueue_on_commit(delivery_ids: Iterable[uuid.UUID]) -> None:
    ids = [str(pk) for pk in delivery_ids]
    if ids:
        transaction.on_commit(lambda: enqueue_deliveries(ids), robust=True)


def enqueue_deliveries(delivery_ids: Iterable[Any]) -> int:
    """One Celery task per delivery. A broker that cannot be reached is not an error: the
    rows are stored and the beat sweep sends them."""
    from kombu.exceptions import OperationalError as BrokerUnavailable

    from webhooks.tasks import deliver

    sent = 0
    for delivery_id in delivery_ids:
        try:
            deliver.apply_async(args=(str(delivery_id),), retry=False)
        except BrokerUnavailable as exc:
            logger.warning("webhooks: delivery not queued, broker unreachable (%s)", exc)
            break
        sent += 1
    return sent


def webhook_deliveries_create_for_event(*, event: OutboxEvent) -> list[uuid.UUID]:
    """One delivery per active endpoint subscribed to the event among the companies party
    to it (inside the outbox handler's transaction). Idempotent: (endpoint, event) is unique."""
    endpoints = [
        e
        for e in selectors.party_endpoints_of_event(
            aggregate_type=event.aggregate_type, aggregate_id=event.aggregate_id
        )
        if rules.subscribes(list(e.event_types or []), event.event_type)
    ]
    if not endpoints:
        return []
    body = rules.delivery_body(
        event_type=event.event_type, timestamp=iso_ms(event.created_at), data=event.payload
    )
    now = timezone.now()
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            event_id=event.id,
            event_type=event.event_type,
            body=body,
            next_attempt_at=now,
            enqueued_at=now,
            created_at=now,
            updated_at=now,
        )
        for endpoint in endpoints
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    ids = [row.pk for row in rows]
    _enqueue_on_commit(ids)
    return ids


def webhook_test_send(*, company: Company | None, endpoint_id: uuid.UUID) -> WebhookDelivery:
    """A ``webhook.test`` event to this endpoint only, sent at once."""
    with transaction.atomic():
        endpoint = _locked_endpoint(company=company, endpoint_id=endpoint_id)
        if not endpoint.is_active:
            raise Conflict("Webhook endpoint is not active; enable it first")
        now = timezone.now()
        event_id = uuid.uuid4()
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=event_id,
            event_type=rules.TEST_EVENT_TYPE,
            body=rules.delivery_body(
                event_type=rules.TEST_EVENT_TYPE,
                timestamp=iso_ms(now),
                data={
                    "webhookEndpointId": str(endpoint.pk),
                    "eventId": str(event_id),
                    "message": "A test event sent from ChefOps.",
                },
            ),
            next_attempt_at=now,
            enqueued_at=now,
            created_at=now,
            updated_at=now,
        )
        _enqueue_on_commit([delivery.pk])
    return delivery


def webhook_delivery_redeliver(
    *, company: Company | None, delivery_id: uuid.UUID, endpoint_id: uuid.UUID | None = None
) -> WebhookDelivery:
    """Send a delivery again, whatever became of it, with a fresh retry schedule (same
    ``webhook-id``: a receiver that already has it can tell)."""
    with transaction.atomic():
        found = selectors.webhook_delivery_get(
            company=company, delivery_id=delivery_id, endpoint_id=endpoint_id
        )
        delivery = (
            WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=found.pk)
        )
        if not delivery.endpoint.is_active:
            raise Conflict("Webhook endpoint is not active; enable it first")
        now = timezone.now()
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.locked_until = None
        delivery.enqueued_at = now
        delivery.updated_at = now
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "next_attempt_at",
                "locked_until",
                "enqueued_at",
                "updated_at",
            ]
        )
        _enqueue_on_commit([delivery.pk])
    return delivery


# --- deliveries: sending --------------------------------------------------------------------


def _claim(delivery_id: Any, now: datetime) -> datetime | None:
    """Hold the delivery if it is due, PENDING, of an active endpoint and not held; the
    instant it is held until is the claim's token."""
    timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS)
    until = now + timedelta(seconds=3 * timeout + 30, microseconds=secrets.randbelow(1000))
    with transaction.atomic():
        _relaxed_commit()
        claimed = (
            WebhookDelivery.objects.filter(
                pk=delivery_id,
                status=DeliveryStatus.PENDING,
                next_attempt_at__lte=now,
                endpoint__is_active=True,
            )
            .exclude(locked_until__gt=now)
            .update(locked_until=until)
        )
    return until if claimed else None


def _relaxed_commit() -> None:
    """The bookkeeping of an attempt commits without waiting for the disk (PostgreSQL's
    ``synchronous_commit = off`` for this transaction only): two commits per attempt would
    otherwise cost two disk flushes. A database crash can lose the last fraction of a second
    of them, which at worst sends a delivery once more (same webhook-id): the at-least-once
    promise holds. Nothing else is relaxed; an endpoint being disabled (and its e-mail event)
    commits as usual."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    """The current secret, and the one before it while its rotation grace lasts."""
    secrets_now = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        secrets_now.append(endpoint.previous_secret)
    return secrets_now


def signed_headers(
    delivery: WebhookDelivery, signing: list[str], *, timestamp: int
) -> dict[str, str]:
    message_id = str(delivery.pk)
    signatures = [
        rules.signature(secret=key, message_id=message_id, timestamp=timestamp, body=delivery.body)
        for key in signing
    ]
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def webhook_delivery_attempt(*, delivery_id: Any) -> str:
    """One attempt of one delivery; returns what happened (``skipped`` when another worker
    holds it, it is not due, done, or its endpoint is off)."""
    try:
        delivery_id = uuid.UUID(str(delivery_id))
    except ValueError:
        return "skipped"
    until = _claim(delivery_id, timezone.now())
    if until is None:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    signing = signing_secrets(endpoint, now=timezone.now())
    headers = signed_headers(delivery, signing, timestamp=int(time.time()))
    status_code: int | None = None
    latency_ms: int | None = None
    excerpt = ""
    error = ""
    refused = False
    started = time.monotonic()
    try:
        outcome = transport.post(
            url=endpoint.url,
            body=delivery.body.encode(),
            headers=headers,
            timeout=float(settings.WEBHOOK_TIMEOUT_SECONDS),
            allow_http=settings.WEBHOOK_ALLOW_HTTP,
            allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS,
        )
    except transport.TargetRefused as exc:
        refused = True
        error = f"refused: {exc}"
    except (OSError, HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"
        latency_ms = int((time.monotonic() - started) * 1000)
    else:
        status_code = outcome.status_code
        latency_ms = outcome.latency_ms
        excerpt = outcome.body_excerpt
        metrics.LATENCY.labels(f"{status_code // 100}xx").observe(outcome.latency_ms / 1000)
        if not rules.is_success(status_code):
            error = f"HTTP {status_code}"
            if 300 <= status_code < 400:
                error += " (redirects are not followed)"
    return _record(
        delivery,
        until=until,
        succeeded=status_code is not None and rules.is_success(status_code),
        refused=refused,
        status_code=status_code,
        latency_ms=latency_ms,
        excerpt=excerpt,
        error=error,
    )


def _record(
    delivery: WebhookDelivery,
    *,
    until: datetime,
    succeeded: bool,
    refused: bool,
    status_code: int | None,
    latency_ms: int | None,
    excerpt: str,
    error: str,
) -> str:
    now = timezone.now()
    attempts = delivery.attempts + 1
    if succeeded:
        status, next_at, result = DeliveryStatus.SUCCEEDED, None, "succeeded"
    else:
        delay = rules.retry_delay(attempts=attempts, spread=rules.spread_of(delivery.pk))
        if delay is None:
            status, next_at, result = DeliveryStatus.FAILED, None, "gave_up"
        else:
            status, next_at, result = DeliveryStatus.PENDING, now + delay, "retry"
    with transaction.atomic():
        if status != DeliveryStatus.FAILED:
            _relaxed_commit()
        # Guarded by the claim: a worker that overran its hold does not overwrite another's.
        updated = WebhookDelivery.objects.filter(pk=delivery.pk, locked_until=until).update(
            status=status,
            attempts=attempts,
            next_attempt_at=next_at,
            locked_until=None,
            enqueued_at=None,
            last_attempt_at=now,
            last_status_code=status_code,
            last_latency_ms=latency_ms,
            last_error=rules.bounded_error(error),
            last_response_body=excerpt,
            updated_at=now,
        )
        if not updated:
            return "lost_claim"
        endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
        if succeeded:
            if delivery.endpoint.consecutive_failures:
                endpoints.filter(consecutive_failures__gt=0).update(consecutive_failures=0)
        elif status == DeliveryStatus.FAILED:
            endpoint = endpoints.select_for_update().first()
            if endpoint is not None:
                endpoint.consecutive_failures += 1
                endpoint.save(update_fields=["consecutive_failures"])
                if (
                    endpoint.is_active
                    and endpoint.consecutive_failures >= settings.WEBHOOK_MAX_FAILURES
                ):
                    _disable(endpoint, notify=True)
                    logger.warning(
                        "webhooks: endpoint %s disabled after %d failed deliveries",
                        endpoint.pk,
                        endpoint.consecutive_failures,
                    )
    metrics.DELIVERIES.labels("refused" if refused else result).inc()
    return result


def webhook_deliveries_sweep(*, limit: int = SWEEP_LIMIT) -> int:
    """Queue a task for each due delivery: retries whose time has come, and deliveries whose
    task was queued over REQUEUE_AFTER ago and has not run (lost with a worker or a broker)."""
    now = timezone.now()
    ids = selectors.due_delivery_ids(now=now, limit=limit, requeue_after=REQUEUE_AFTER)
    if not ids:
        return 0
    WebhookDelivery.objects.filter(pk__in=ids).update(enqueued_at=now)
    return enqueue_deliveries(ids)


# --- retention ------------------------------------------------------------------------------


def webhook_deliveries_purge(
    *, now: datetime | None = None, dry_run: bool = False, batch_size: int = 5000
) -> int:
    """Delete deliveries created more than 30 days ago, in batches; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=KEEP_DAYS)
    old = WebhookDelivery.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count()
    total = 0
    while True:
        ids = list(old.order_by("created_at").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        total += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
