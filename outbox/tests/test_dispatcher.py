"""The dispatcher on one connection: success, failures and backoff, DEAD, retry, stale claims,
per-aggregate order, idempotent re-delivery, stopping."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from outbox import dispatcher as dispatcher_module
from outbox.dispatcher import OutboxDispatcher
from outbox.handlers import AUDIT_HANDLER
from outbox.models import EventStatus, OutboxEvent, ProcessedEvent
from outbox.registry import handlers_for
from outbox.services import outbox_dead_events_retry, outbox_event_emit
from outbox.tasks import dispatch
from outbox.tests.conftest import Register
from outbox.tests.effect_handlers import (
    EFFECT_EVENT,
    HANDLER_A,
    HANDLER_B,
    effect_rows,
    record_effect,
)
from outbox.tests.support import FixedRandom, bulk_events

T0 = datetime.fromisoformat("2026-03-02T10:00:00+00:00")

pytestmark = pytest.mark.django_db


def _emit(aggregate_id: str = "agg-1", event_type: str = EFFECT_EVENT) -> OutboxEvent:
    with transaction.atomic():
        return outbox_event_emit(
            event_type=event_type,
            aggregate_type="Test",
            aggregate_id=aggregate_id,
            payload={"aggregate": aggregate_id},
        )


def _reload(event: OutboxEvent) -> OutboxEvent:
    return OutboxEvent.objects.get(pk=event.pk)


def _effects_per_event_handler() -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for _id, event_id, handler, _agg in effect_rows():
        counts[(event_id, handler)] = counts.get((event_id, handler), 0) + 1
    return counts


def test_the_audit_handler_is_registered_for_every_event() -> None:
    assert AUDIT_HANDLER in {h.name for h in handlers_for("anything.at_all")}


def test_success_runs_every_handler_once_and_records_it(
    effects: None, handlers: Register, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[str] = []
    handlers(lambda e: sent.append(str(e.id)), EFFECT_EVENT, name="test.mail", external=True)
    event = _emit()

    with caplog.at_level(logging.INFO, logger="chefops.audit"):
        stats = OutboxDispatcher(worker_id="w1").run()

    assert (stats.claimed, stats.processed, stats.failed) == (1, 1, 0)
    stored = _reload(event)
    assert stored.status == EventStatus.PROCESSED and stored.processed_at is not None
    assert (stored.locked_at, stored.locked_by, stored.attempts) == (None, "", 0)
    assert _effects_per_event_handler() == {
        (str(event.id), HANDLER_A): 1,
        (str(event.id), HANDLER_B): 1,
    }
    assert sent == [str(event.id)]
    assert set(ProcessedEvent.objects.values_list("handler_name", flat=True)) == {
        HANDLER_A,
        HANDLER_B,
        "test.mail",
    }
    audit = [r for r in caplog.records if r.name == "chefops.audit"]
    assert len(audit) == 1
    line: Any = audit[0]
    assert (line.event_id, line.event_type, line.aggregate_id) == (
        str(event.id),
        EFFECT_EVENT,
        "agg-1",
    )
    assert line.aggregate_type == "Test" and line.attempt == 1 and line.metadata == {}


def test_events_without_subscribers_cost_a_fixed_number_of_queries(
    django_assert_max_num_queries: Any,
) -> None:
    bulk_events(200, aggregates=200, event_type="test.nobody_listens")
    # Stale-claim recovery, the claim (one statement on PostgreSQL, select + update in a
    # transaction on SQLite), one bulk status update: nothing per event.
    with django_assert_max_num_queries(6):
        stats = OutboxDispatcher(batch_size=250).run(max_batches=1)
    assert stats.processed == 200
    assert not OutboxEvent.objects.exclude(status=EventStatus.PROCESSED).exists()


def test_database_handlers_cost_a_fixed_number_of_queries_per_batch(
    effects: None, django_assert_max_num_queries: Any
) -> None:
    bulk_events(100, aggregates=100)
    # Per batch: claim, ledger read, then per handler one bulk ledger insert + its effects.
    with django_assert_max_num_queries(20 + 2 * 100):
        stats = OutboxDispatcher(batch_size=100).run(max_batches=1)
    assert stats.processed == 100
    assert len(effect_rows()) == 200


def test_failures_back_off_exactly_and_the_fifth_is_dead(
    handlers: Register, fixed_rng: FixedRandom
) -> None:
    def always_fails(event: OutboxEvent) -> None:
        raise RuntimeError("smtp down")

    handlers(always_fails, EFFECT_EVENT, name="test.always_fails", external=True)
    with time_machine.travel(T0, tick=False) as clock:
        event = _emit()
        dispatcher = OutboxDispatcher(worker_id="w1", rng=fixed_rng)
        expected_waits = [2.25, 4.25, 8.25, 16.25]  # 1 s x 2^attempts + 0.25 s jitter
        for attempt, wait in enumerate(expected_waits, start=1):
            failed_at = timezone.now()
            assert dispatcher.run().failed == 1
            stored = _reload(event)
            assert stored.status == EventStatus.PENDING and stored.attempts == attempt
            assert stored.next_attempt_at == failed_at + timedelta(seconds=wait)
            assert stored.last_error == "test.always_fails: RuntimeError: smtp down"
            assert stored.locked_by == "" and stored.locked_at is None
            # Not due a microsecond early.
            clock.move_to(stored.next_attempt_at - timedelta(microseconds=1))
            assert dispatcher.run().claimed == 0
            clock.move_to(stored.next_attempt_at)
        last_due = _reload(event).next_attempt_at
        stats = dispatcher.run()

    assert (stats.failed, stats.dead) == (0, 1)
    stored = _reload(event)
    assert stored.status == EventStatus.DEAD and stored.attempts == 5
    assert stored.next_attempt_at == last_due
    assert "smtp down" in stored.last_error
    assert OutboxDispatcher().run().claimed == 0  # DEAD stays put


def test_retry_revives_only_dead_events(handlers: Register) -> None:
    dead = bulk_events(3, aggregates=3, status=EventStatus.DEAD, attempts=5, last_error="x")
    alive = _emit(aggregate_id="alive")

    assert outbox_dead_events_retry(ids=[]) == 0
    assert outbox_dead_events_retry(ids=[dead[0].pk, alive.pk]) == 1
    revived = _reload(dead[0])
    assert revived.status == EventStatus.PENDING
    assert (revived.attempts, revived.last_error) == (0, "")
    assert revived.next_attempt_at <= timezone.now()
    assert _reload(alive).status == EventStatus.PENDING and _reload(alive).attempts == 0
    assert outbox_dead_events_retry(all_dead=True) == 2
    assert not OutboxEvent.objects.filter(status=EventStatus.DEAD).exists()
    assert OutboxDispatcher().run().processed == 4


def test_a_failing_handler_does_not_rerun_the_ones_that_succeeded(
    effects: None, handlers: Register, fixed_rng: FixedRandom
) -> None:
    calls = {"mail": 0, "flaky": 0}

    def mail(event: OutboxEvent) -> None:
        calls["mail"] += 1

    def flaky(event: OutboxEvent) -> None:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ConnectionError("first try fails")

    handlers(mail, EFFECT_EVENT, external=True)
    handlers(flaky, EFFECT_EVENT, external=True)
    with time_machine.travel(T0, tick=False) as clock:
        event = _emit()
        dispatcher = OutboxDispatcher(rng=fixed_rng)
        assert dispatcher.run().failed == 1
        clock.shift(timedelta(seconds=3))
        assert dispatcher.run().processed == 1

    assert _reload(event).status == EventStatus.PROCESSED
    assert calls == {"mail": 1, "flaky": 2}
    assert set(_effects_per_event_handler().values()) == {1}
    assert ProcessedEvent.objects.filter(event_id=event.id).count() == 4


def test_a_failing_database_handler_loses_only_its_own_effect(
    effects: None, handlers: Register
) -> None:
    events = bulk_events(5, aggregates=5)
    poisoned = events[2]

    def writes_then_fails(event: OutboxEvent) -> None:
        ProcessedEvent.objects.create(event_id=event.id, handler_name="test.side_write")
        if event.pk == poisoned.pk:
            raise ValueError("bad payload")

    handlers(writes_then_fails, EFFECT_EVENT)
    stats = OutboxDispatcher().run()

    assert (stats.processed, stats.failed) == (4, 1)
    assert _reload(poisoned).status == EventStatus.PENDING
    assert "ValueError: bad payload" in _reload(poisoned).last_error
    # The failing event's writes and its ledger row rolled back; the others' committed.
    side = set(
        ProcessedEvent.objects.filter(handler_name="test.side_write").values_list(
            "event_id", flat=True
        )
    )
    assert side == {e.id for e in events} - {poisoned.id}
    assert not ProcessedEvent.objects.filter(
        event_id=poisoned.id, handler_name="test.writes_then_fails"
    ).exists()
    # The other handlers of the poisoned event did their work once and are not repeated.
    assert _effects_per_event_handler()[(str(poisoned.id), HANDLER_A)] == 1


def test_a_lone_event_whose_database_handler_fails_keeps_none_of_its_writes(
    effects: None, handlers: Register
) -> None:
    (event,) = bulk_events(1, aggregates=1)

    def half_done(event: OutboxEvent) -> None:
        record_effect(event, "test.half_done")
        raise ValueError("nope")

    handlers(half_done, EFFECT_EVENT)
    assert OutboxDispatcher().run().failed == 1

    stored = _reload(event)
    assert (stored.status, stored.attempts) == (EventStatus.PENDING, 1)
    assert stored.last_error == "test.half_done: ValueError: nope"
    assert {row[2] for row in effect_rows()} == {HANDLER_A, HANDLER_B}
    assert not ProcessedEvent.objects.filter(handler_name="test.half_done").exists()


def test_a_redelivered_event_has_no_second_effect(effects: None, handlers: Register) -> None:
    mails: list[str] = []
    handlers(lambda e: mails.append(str(e.id)), EFFECT_EVENT, name="test.mail", external=True)
    event = _emit()
    OutboxDispatcher().run()
    # Delivered again, as after a crash between the handlers and the status update.
    OutboxEvent.objects.filter(pk=event.pk).update(status=EventStatus.PENDING)
    assert OutboxDispatcher().run().processed == 1

    assert _effects_per_event_handler() == {
        (str(event.id), HANDLER_A): 1,
        (str(event.id), HANDLER_B): 1,
    }
    assert mails == [str(event.id)]
    assert ProcessedEvent.objects.filter(event_id=event.id).count() == 3


def test_stale_claims_come_back_after_60_seconds_and_the_late_worker_changes_nothing(
    effects: None,
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        event = _emit()
        slow = OutboxDispatcher(worker_id="slow")
        claimed = slow.claim()
        assert [e.pk for e in claimed] == [event.pk]

        clock.shift(timedelta(seconds=59))
        assert OutboxDispatcher(worker_id="other").run().claimed == 0
        assert _reload(event).locked_by == "slow"

        clock.shift(timedelta(seconds=2))
        rescued = OutboxDispatcher(worker_id="other").run()
        assert (rescued.recovered, rescued.processed) == (1, 1)
        stored = _reload(event)
        assert stored.status == EventStatus.PROCESSED and stored.attempts == 1

        # The slow worker wakes up and finishes its old batch: its effects are already
        # recorded by the other worker, and its status update no longer matches its claim.
        late = slow.process(claimed)
    assert late.processed == 0
    assert _reload(event).processed_at == stored.processed_at
    assert set(_effects_per_event_handler().values()) == {1}


def test_a_worker_that_keeps_dying_on_an_event_makes_it_dead() -> None:
    (event,) = bulk_events(
        1, aggregates=1, status=EventStatus.PROCESSING, attempts=4, locked_by="gone"
    )
    OutboxEvent.objects.filter(pk=event.pk).update(locked_at=timezone.now() - timedelta(seconds=61))
    assert OutboxDispatcher().run().recovered == 1
    stored = _reload(event)
    assert stored.status == EventStatus.DEAD and stored.attempts == 5
    assert "claim expired" in stored.last_error


def test_events_of_one_aggregate_are_delivered_in_creation_order(
    handlers: Register, fixed_rng: FixedRandom
) -> None:
    delivered: list[str] = []
    failures = {"a1": 1}

    def record(event: OutboxEvent) -> None:
        name = event.payload["name"]
        if failures.get(name):
            failures[name] -= 1
            raise RuntimeError("not yet")
        delivered.append(name)

    handlers(record, "test.ordered", external=True)
    with time_machine.travel(T0, tick=False) as clock, transaction.atomic():
        for agg, name in [("A", "a1"), ("A", "a2"), ("B", "b1"), ("A", "a3"), ("B", "b2")]:
            outbox_event_emit(
                event_type="test.ordered",
                aggregate_type="Test",
                aggregate_id=agg,
                payload={"name": name},
            )
        dispatcher = OutboxDispatcher(rng=fixed_rng)
        first = dispatcher.run()
        # a1 failed and backs off: a2 and a3 wait behind it although they are due.
        assert delivered == ["b1", "b2"]
        assert first.failed == 1
        assert OutboxEvent.objects.filter(status=EventStatus.PENDING).count() == 3
        clock.shift(timedelta(seconds=3))
        dispatcher.run()
    assert delivered == ["b1", "b2", "a1", "a2", "a3"]


def test_a_dead_event_does_not_block_its_aggregate(handlers: Register) -> None:
    older = bulk_events(1, aggregates=1, event_type="test.blocked", status=EventStatus.DEAD)[0]
    younger = _emit(aggregate_id=older.aggregate_id, event_type="test.blocked")
    assert OutboxDispatcher().run().processed == 1
    assert _reload(younger).status == EventStatus.PROCESSED


def test_a_stop_request_releases_the_events_not_started(handlers: Register) -> None:
    events = bulk_events(5, aggregates=5, event_type="test.stoppable")
    seen: list[int] = []
    handlers(
        lambda e: seen.append(e.payload["n"]), "test.stoppable", name="test.seen", external=True
    )

    stats = OutboxDispatcher(should_stop=lambda: len(seen) >= 2).run()

    assert (stats.claimed, stats.processed, stats.released) == (5, 2, 3)
    assert seen == [0, 1]
    rest = OutboxEvent.objects.filter(pk__in=[e.pk for e in events[2:]])
    assert {(e.status, e.attempts, e.locked_by, e.locked_at) for e in rest} == {
        (EventStatus.PENDING, 0, "", None)
    }


def test_a_slow_batch_releases_its_rest_long_before_the_stale_limit(
    handlers: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk_events(4, aggregates=4, event_type="test.slow")

    def slow(event: OutboxEvent) -> None:
        if event.payload["n"] == 1:
            # As if this e-mail took the batch past its time.
            monkeypatch.setattr(dispatcher_module, "MAX_BATCH_SECONDS", -1.0)

    handlers(slow, "test.slow", external=True)
    stats = OutboxDispatcher().run(max_batches=1)
    assert (stats.processed, stats.released) == (2, 2)
    assert dict(OutboxEvent.objects.values_list("payload__n", "status")) == {
        0: EventStatus.PROCESSED,
        1: EventStatus.PROCESSED,
        2: EventStatus.PENDING,
        3: EventStatus.PENDING,
    }


def test_a_soft_time_limit_mid_batch_records_the_finished_and_releases_the_rest(
    handlers: Register,
) -> None:
    events = bulk_events(5, aggregates=5, event_type="test.interrupted")

    def interrupted(event: OutboxEvent) -> None:
        if event.payload["n"] == 2:
            raise SoftTimeLimitExceeded()

    handlers(interrupted, "test.interrupted", external=True)
    with pytest.raises(SoftTimeLimitExceeded):
        OutboxDispatcher().run()

    statuses = dict(OutboxEvent.objects.values_list("payload__n", "status"))
    assert statuses == {
        0: EventStatus.PROCESSED,
        1: EventStatus.PROCESSED,
        2: EventStatus.PENDING,
        3: EventStatus.PENDING,
        4: EventStatus.PENDING,
    }
    assert not OutboxEvent.objects.filter(pk__in=[e.pk for e in events], locked_by__gt="").exists()


def test_the_celery_task_dispatches_and_reports_the_count(effects: None) -> None:
    bulk_events(30, aggregates=10)
    # Ten aggregates of three events: three rounds of claims, all within one task run.
    assert dispatch.apply().get() == 30
    assert len(effect_rows()) == 60


def test_an_empty_budget_starts_no_batch() -> None:
    bulk_events(3, aggregates=3, event_type="test.budget")
    assert OutboxDispatcher().run(budget_seconds=0).claimed == 0
    assert OutboxEvent.objects.filter(status=EventStatus.PENDING).count() == 3


def test_batch_size_is_bounded() -> None:
    with pytest.raises(ValueError):
        OutboxDispatcher(batch_size=0)
    with pytest.raises(ValueError):
        OutboxDispatcher(batch_size=1001)
