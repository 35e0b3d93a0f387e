"""Two beats by mistake: every scheduled task enqueued twice at once does its work once.

Each scheduled task runs twice in two threads (two connections to PostgreSQL, as two Celery
workers would), released together by a barrier; whatever the interleaving, one run does the
period's work and the other skips, and the effects (service days, fallback events, purged
rows, handled outbox events) exist once. chefops/ops/joblocks.py has the mechanisms.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connections

from chefops.models import ScheduledJob
from chefops.ops.joblocks import claim_period, period_start
from chefops.ops.retention_tasks import retention_purge
from outbox.models import EventStatus, OutboxEvent
from outbox.tasks import dispatch
from outbox.tests.effect_handlers import (
    create_effect_table,
    drop_effect_table,
    effect_rows,
    register_effect_handlers,
    unregister_effect_handlers,
)
from outbox.tests.support import bulk_events
from servicedays import jobs
from servicedays.models import ServiceDay
from servicedays.tasks import apply_fallback, generate_upcoming, scheduled_run
from servicedays.tests.helpers import make_contract, make_day

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday
WAIT_SECONDS = 120


def twice_at_once(task: Callable[[], Any]) -> list[Any]:
    """``task`` in two threads released together; both results (or the first error)."""
    barrier = threading.Barrier(2, timeout=WAIT_SECONDS)
    results: list[Any] = [None, None]
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            barrier.wait()
            results[slot] = task()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a run did not finish"
    if errors:
        raise errors[0]
    return results


def _eager(task: Any) -> Any:
    """The task run eagerly in this thread, its return value. Not ``.get()``: Celery's guard
    against joining a result inside a task is one flag for the whole process, which the other
    thread's eager run sets meanwhile."""
    return task.apply(throw=True).result


def skipped(line: str) -> bool:
    return ": skipped, " in line


def test_period_start_is_the_day_or_the_hour_in_utc() -> None:
    assert period_start("generate_service_days", NOW) == datetime(2026, 3, 4, tzinfo=UTC)
    assert period_start("apply_fallback", NOW) == datetime(2026, 3, 4, 10, tzinfo=UTC)
    assert period_start("retention_purge", NOW) == datetime(2026, 3, 4, tzinfo=UTC)


def test_the_daily_generation_runs_once_per_day(cast: Any) -> None:
    make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    with time_machine.travel(NOW, tick=False):
        lines = twice_at_once(lambda: _eager(generate_upcoming))
        assert sorted(skipped(line) for line in lines) == [False, True], lines
        assert "8 service days inserted" in next(line for line in lines if not skipped(line))
        assert ServiceDay.objects.count() == 8
        # A third copy of the tick later the same day: nothing either.
        assert generate_upcoming.apply().get() == (
            "generate_service_days: skipped, this period's run already happened"
        )
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        assert "1 service days inserted" in generate_upcoming.apply().get()


def test_the_hourly_fallback_emits_one_event_per_contract(cast: Any) -> None:
    first = make_contract(cast, min_daily_quantity=15)
    second = make_contract(cast, client_company=cast.other_client.company)
    for contract in (first, second):
        make_day(contract, NOW.date() - timedelta(days=1))
    with time_machine.travel(NOW, tick=False):
        lines = twice_at_once(lambda: _eager(apply_fallback))
    assert sorted(skipped(line) for line in lines) == [False, True], lines
    events = OutboxEvent.objects.filter(event_type="servicedays.fallback_applied")
    assert sorted(events.values_list("aggregate_id", flat=True)) == sorted(
        [str(first.pk), str(second.pk)]
    )
    assert ServiceDay.objects.filter(expected_quantity__isnull=True).count() == 0


def test_the_retention_purge_runs_once_per_day() -> None:
    with time_machine.travel(NOW, tick=False):
        lines = twice_at_once(lambda: _eager(retention_purge))
    assert sorted(skipped(line) for line in lines) == [False, True], lines
    row = ScheduledJob.objects.get(job="retention_purge")
    assert row.last_period == datetime(2026, 3, 4, tzinfo=UTC)
    assert (row.lease_holder, row.lease_expires_at) == ("", None)


def test_a_run_in_progress_makes_the_other_skip_and_a_failed_one_gives_its_period_back(
    cast: Any,
) -> None:
    make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    holding = threading.Event()
    release = threading.Event()

    def first_run_stuck_in_its_transaction() -> None:
        try:
            with scheduled_run("generate_service_days", jobs.GENERATE_LOCK_ID) as skip:
                assert skip is None
                holding.set()
                release.wait(timeout=WAIT_SECONDS)
                raise RuntimeError("the first run fails")
        except RuntimeError:
            pass
        finally:
            connections.close_all()

    with time_machine.travel(NOW, tick=False):
        holder = threading.Thread(target=first_run_stuck_in_its_transaction)
        holder.start()
        try:
            assert holding.wait(timeout=WAIT_SECONDS)
            assert generate_upcoming.apply().get() == (
                "generate_service_days: skipped, another run holds the lock"
            )
        finally:
            release.set()
            holder.join(timeout=WAIT_SECONDS)
        # Its claim rolled back with it: the redelivered task does the period's work.
        assert "8 service days inserted" in generate_upcoming.apply().get()


def test_claiming_a_period_needs_the_jobs_transaction() -> None:
    with pytest.raises(RuntimeError, match="inside the job's transaction"):
        claim_period("apply_fallback")


def test_two_outbox_sweeps_at_once_handle_each_event_once() -> None:
    """The 5 s sweep needs no period: two sweeps share the due events (claims per event,
    SKIP LOCKED, and the ledger), so each handler's effect is written once."""
    create_effect_table()
    register_effect_handlers()
    try:
        events = bulk_events(200, aggregates=50)
        for _ in range(len(events)):  # a batch takes one event per aggregate
            twice_at_once(lambda: _eager(dispatch))
            if not OutboxEvent.objects.exclude(status=EventStatus.PROCESSED).exists():
                break
        assert OutboxEvent.objects.filter(status=EventStatus.PROCESSED).count() == 200
        per_effect = Counter((event_id, handler) for _id, event_id, handler, _ in effect_rows())
        assert len(per_effect) == 2 * 200
        assert set(per_effect.values()) == {1}
    finally:
        unregister_effect_handlers()
        drop_effect_table()
