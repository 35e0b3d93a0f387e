"""Emitting: only inside a transaction, gone with a rollback, one dispatch nudge per commit."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.db import transaction

from chefops.testing.factories import UserFactory
from companies.models import Role
from outbox.models import EventStatus, OutboxEvent
from outbox.services import OutboxError, outbox_event_emit
from outbox.tests.conftest import Register


def _emit(aggregate_id: str = "c-1", event_type: str = "test.emitted", **kw: Any) -> OutboxEvent:
    return outbox_event_emit(
        event_type=event_type,
        aggregate_type="Contract",
        aggregate_id=aggregate_id,
        payload={"contractId": aggregate_id},
        **kw,
    )


def _emit_in_a_failing_change(aggregate_id: str) -> None:
    with transaction.atomic():
        _emit(aggregate_id=aggregate_id)
        raise RuntimeError("the change failed")


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_raises_and_writes_nothing() -> None:
    with pytest.raises(OutboxError, match=r"inside transaction\.atomic"):
        _emit()
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_leaves_no_event_and_sends_no_nudge(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        _emit_in_a_failing_change("c-1")
    assert OutboxEvent.objects.count() == 0
    assert callbacks == []


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_keeps_its_event() -> None:
    with transaction.atomic():
        event = _emit(aggregate_id="c-9")
    stored = OutboxEvent.objects.get(pk=event.pk)
    assert (stored.event_type, stored.aggregate_id) == ("test.emitted", "c-9")
    assert stored.attempts == 0 and stored.max_attempts == 5


@pytest.mark.django_db
def test_commit_nudges_the_dispatcher_once_per_transaction(
    django_capture_on_commit_callbacks: Any, handlers: Register
) -> None:
    seen: list[str] = []
    handlers(lambda e: seen.append(e.aggregate_id), "test.emitted", name="test.seen")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for n in range(3):
            _emit(aggregate_id=f"c-{n}")
    assert len(callbacks) == 1  # one nudge for three events
    # Celery is eager in tests: the nudge ran outbox.dispatch right after the commit.
    assert sorted(seen) == ["c-0", "c-1", "c-2"]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {EventStatus.PROCESSED}


@pytest.mark.django_db
def test_the_nudge_survives_a_rolled_back_savepoint(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        with pytest.raises(RuntimeError):
            _emit_in_a_failing_change("gone")  # a savepoint: its nudge goes with it
        kept = _emit(aggregate_id="kept")
        with transaction.atomic():
            _emit(aggregate_id="nested")  # covered by the outer nudge
    assert len(callbacks) == 1
    assert set(OutboxEvent.objects.values_list("aggregate_id", flat=True)) == {"kept", "nested"}
    assert kept.metadata == {}


@pytest.mark.django_db
def test_emit_records_the_actor_and_keeps_creation_order_under_a_frozen_clock() -> None:
    user = UserFactory.create(role=Role.MANAGER)
    with time_machine.travel("2026-03-02 10:00:00+00:00", tick=False), transaction.atomic():
        first = _emit(aggregate_id="same", actor=user)
        second = _emit(aggregate_id="same")
    assert first.created_at < second.created_at
    assert first.metadata["actorUserId"] == str(user.pk)
    assert user.company is not None
    assert first.metadata["actorCompanyId"] == str(user.company.pk)
    assert first.metadata["actorRole"] == user.role
