"""Operating webhooks: the admin (secrets masked, bodies escaped, actions through the
services), ``manage.py webhooks``, the retention purge, the beat schedule and the metrics."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from chefops.ops.metrics import generate_latest
from chefops.ops.retention import retention_purge_all
from chefops.schedule import SCHEDULE
from companies.models import User
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.215.14/hooks"


@pytest.fixture
def staff_client(db: None) -> Client:
    staff = User.objects.create_superuser("ops@example.com", "ops-password-1")
    client = Client()
    client.force_login(staff)
    return client


def _endpoint(cast: Any) -> WebhookEndpoint:
    return services.webhook_endpoint_create(company=cast.catering.company, url=PUBLIC_URL)


def _delivery(endpoint: WebhookEndpoint, **fields: Any) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event_type="contract.paused",
        body='{"type":"contract.paused"}',
        **fields,
    )


def test_admin_pages_mask_the_secret_and_escape_bodies(cast: Any, staff_client: Client) -> None:
    endpoint = _endpoint(cast)
    delivery = _delivery(
        endpoint,
        status=DeliveryStatus.FAILED,
        last_response_body="<script>alert('x')</script>",
        last_status_code=500,
    )
    for url in (
        "/admin/webhooks/webhookendpoint/",
        "/admin/webhooks/webhookendpoint/add/",
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        "/admin/webhooks/webhookdelivery/",
        f"/admin/webhooks/webhookdelivery/?q={delivery.pk}",
        "/admin/webhooks/webhookdelivery/?q=nonsense",
    ):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert endpoint.secret not in response.content.decode()
    page = staff_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    change = staff_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret[:10] + "…" in change.content.decode()


def test_admin_creates_through_the_service_and_refuses_private_targets(
    cast: Any, staff_client: Client
) -> None:
    form = {
        "company": str(cast.client.company.pk),
        "url": "https://10.0.0.1/hook",
        "description": "from the admin",
        "is_active": "on",
        "event_types": ["contract.paused"],
    }
    refused = staff_client.post("/admin/webhooks/webhookendpoint/add/", form)
    assert refused.status_code == 200
    assert "private, loopback, link-local or reserved" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()
    created = staff_client.post("/admin/webhooks/webhookendpoint/add/", {**form, "url": PUBLIC_URL})
    assert created.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.company == cast.client.company
    assert endpoint.event_types == ["contract.paused"]
    assert endpoint.secret.startswith("whsec_")


def test_admin_actions_redeliver_disable_and_test(cast: Any, staff_client: Client) -> None:
    endpoint = _endpoint(cast)
    delivery = _delivery(endpoint, status=DeliveryStatus.FAILED, attempts=10, next_attempt_at=None)
    response = staff_client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [str(delivery.pk)]},
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    staff_client.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "send_test_event", "_selected_action": [str(endpoint.pk)]},
    )
    assert endpoint.deliveries.filter(event_type="webhook.test").count() == 1
    staff_client.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "disable_endpoints", "_selected_action": [str(endpoint.pk)]},
    )
    endpoint.refresh_from_db()
    assert not endpoint.is_active


def test_the_command_lists_redelivers_and_disables(cast: Any) -> None:
    endpoint = _endpoint(cast)
    delivery = _delivery(endpoint, status=DeliveryStatus.FAILED, attempts=10, next_attempt_at=None)
    out = StringIO()
    call_command("webhooks", "list", stdout=out)
    assert str(endpoint.pk) in out.getvalue() and "failed=1" in out.getvalue()
    assert out.getvalue().rstrip().endswith("webhooks: 1 endpoint(s)")
    out = StringIO()
    call_command("webhooks", "redeliver", str(delivery.pk), stdout=out)
    assert "queued again" in out.getvalue()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    out = StringIO()
    call_command("webhooks", "disable", str(endpoint.pk), stdout=out)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "disabled" in out.getvalue()
    with pytest.raises(CommandError, match="not an id"):
        call_command("webhooks", "disable", "nope")
    with pytest.raises(CommandError, match="not found"):
        call_command("webhooks", "redeliver", str(uuid.uuid4()))
    out = StringIO()
    call_command("webhooks", "list", "--company", str(cast.client.company.pk), stdout=out)
    assert "webhooks: 0 endpoint(s)" in out.getvalue()


def test_deliveries_older_than_30_days_are_purged_by_the_daily_job(cast: Any) -> None:
    endpoint = _endpoint(cast)
    now = timezone.now()
    old = _delivery(endpoint, created_at=now - timedelta(days=31))
    recent = _delivery(endpoint, created_at=now - timedelta(days=29))
    assert services.webhook_deliveries_purge(now=now, dry_run=True) == 1
    with time_machine.travel(now, tick=False):
        summary = retention_purge_all()
    assert summary.endswith("1 webhook delivery(ies)")
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()
    assert WebhookDelivery.objects.filter(pk=recent.pk).exists()


def test_the_sweep_is_on_the_beat_schedule() -> None:
    jobs = {job.task: job for job in SCHEDULE}
    assert jobs["webhooks.sweep"].every_seconds == 10


def test_backlog_metrics(cast: Any) -> None:
    endpoint = _endpoint(cast)
    _delivery(endpoint, next_attempt_at=timezone.now() - timedelta(minutes=2))
    _delivery(endpoint, next_attempt_at=timezone.now() + timedelta(minutes=2))  # not due
    text = generate_latest().decode()
    assert "chefops_webhook_backlog_deliveries 1.0" in text
    age = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("chefops_webhook_oldest_due_age_seconds ")
    )
    assert 110 <= age <= 600
    assert "chefops_webhook_endpoints_disabled 0.0" in text
