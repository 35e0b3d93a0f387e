"""The admin: read-only lists and details, the retry and dispatch-now actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from chefops.testing.factories import UserFactory
from companies.models import User
from outbox.models import EventStatus, OutboxEvent, ProcessedEvent
from outbox.tests.conftest import Register
from outbox.tests.support import bulk_events

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:outbox_outboxevent_changelist"


@pytest.fixture
def staff_client() -> Client:
    admin = User.objects.create_superuser("ops@chefops.local", "ops-password-1")
    client = Client()
    client.force_login(admin)
    return client


def _action(client: Client, action: str, events: list[OutboxEvent]) -> Any:
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [str(e.pk) for e in events]},
        follow=True,
    )


def test_the_list_filters_searches_and_is_read_only(staff_client: Client) -> None:
    dead = bulk_events(2, aggregates=2, event_type="test.admin", status=EventStatus.DEAD)
    bulk_events(3, aggregates=3, event_type="test.other")

    res = staff_client.get(reverse(CHANGELIST), {"status__exact": "DEAD"})
    assert res.status_code == 200
    assert {e.pk for e in res.context["cl"].result_list} == {e.pk for e in dead}

    res = staff_client.get(reverse(CHANGELIST), {"event_type": "test.other"})
    assert res.status_code == 200 and len(res.context["cl"].result_list) == 3

    listing = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert "?event_type=test.other" in listing and "?event_type=test.admin" in listing

    res = staff_client.get(reverse(CHANGELIST), {"q": "agg-1"})
    assert {e.aggregate_id for e in res.context["cl"].result_list} == {"agg-1"}
    assert len(res.context["cl"].result_list) == 2
    res = staff_client.get(reverse(CHANGELIST), {"q": "Test:agg-2"})
    assert [e.aggregate_id for e in res.context["cl"].result_list] == ["agg-2"]
    res = staff_client.get(reverse(CHANGELIST), {"q": "Other:agg-2"})
    assert list(res.context["cl"].result_list) == []
    res = staff_client.get(reverse(CHANGELIST), {"q": str(dead[0].pk)})
    assert [e.pk for e in res.context["cl"].result_list] == [dead[0].pk]
    assert staff_client.get(reverse(CHANGELIST), {"q": "nothing-like-it"}).status_code == 200

    detail = staff_client.get(reverse("admin:outbox_outboxevent_change", args=[dead[0].pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content  # view only
    assert staff_client.get(reverse("admin:outbox_outboxevent_add")).status_code == 403
    delete = reverse("admin:outbox_outboxevent_delete", args=[dead[0].pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert OutboxEvent.objects.filter(pk=dead[0].pk).exists()


def test_retry_action_revives_only_dead_events(staff_client: Client) -> None:
    dead = bulk_events(2, aggregates=2, status=EventStatus.DEAD, attempts=5, last_error="boom")
    processed = bulk_events(1, aggregates=1, status=EventStatus.PROCESSED)
    res = _action(staff_client, "retry_dead", [*dead, *processed])
    assert res.status_code == 200
    assert "2 DEAD events queued for retry; 1 skipped (not DEAD)." in res.content.decode()
    revived = OutboxEvent.objects.filter(pk__in=[e.pk for e in dead])
    assert {(e.status, e.attempts, e.last_error) for e in revived} == {(EventStatus.PENDING, 0, "")}
    assert OutboxEvent.objects.get(pk=processed[0].pk).status == EventStatus.PROCESSED


def test_dispatch_now_makes_events_due_and_runs_the_dispatcher(
    staff_client: Client, handlers: Register, django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    seen: list[str] = []
    handlers(lambda e: seen.append(e.aggregate_id), "test.later", name="test.seen", external=True)
    later = bulk_events(2, aggregates=2, event_type="test.later")
    OutboxEvent.objects.filter(pk__in=[e.pk for e in later]).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5), attempts=2
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        res = _action(staff_client, "dispatch_now", later)
    assert "Dispatcher nudged; 2 PENDING events made due now." in res.content.decode()
    assert len(callbacks) == 1  # Celery is eager in tests: the nudge ran outbox.dispatch
    assert sorted(seen) == ["agg-0", "agg-1"]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.PROCESSED}


def test_the_ledger_is_a_read_only_list(staff_client: Client) -> None:
    (event,) = bulk_events(1, aggregates=1)
    ProcessedEvent.objects.create(event_id=event.pk, handler_name="test.h")
    url = reverse("admin:outbox_processedevent_changelist")
    res = staff_client.get(url, {"q": str(event.pk)})
    assert res.status_code == 200 and len(res.context["cl"].result_list) == 1
    assert staff_client.get(url, {"q": "test.h"}).status_code == 200
    assert staff_client.get(reverse("admin:outbox_processedevent_add")).status_code == 403


def test_company_users_cannot_open_the_outbox_admin() -> None:
    client = Client()
    client.force_login(UserFactory.create())
    res = client.get(reverse(CHANGELIST))
    assert res.status_code == 302 and "/admin/login/" in res["Location"]
