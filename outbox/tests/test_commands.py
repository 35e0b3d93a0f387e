"""`manage.py outbox stats | dead | retry | dispatch` and the metric selectors."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from outbox.models import EventStatus, OutboxEvent
from outbox.selectors import (
    outbox_aggregate_types,
    outbox_backlog_count,
    outbox_dead_count,
    outbox_event_types_of_interest,
    outbox_oldest_pending_age_seconds,
    outbox_status_counts,
)
from outbox.tests.conftest import Register
from outbox.tests.support import bulk_events

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("outbox", *args, stdout=out)
    return out.getvalue()


def _seed() -> dict[str, list[OutboxEvent]]:
    start = timezone.now() - timedelta(minutes=10)
    return {
        "pending": bulk_events(3, aggregates=3, start=start, event_type="test.cmd"),
        "processing": bulk_events(
            1,
            aggregates=1,
            start=start + timedelta(minutes=5),
            event_type="test.cmd",
            status=EventStatus.PROCESSING,
            locked_at=timezone.now(),
            locked_by="w",
        ),
        "dead": bulk_events(
            2,
            aggregates=2,
            start=start,
            event_type="test.dead",
            status=EventStatus.DEAD,
            attempts=5,
            last_error="test.h: RuntimeError: first line\nsecond line",
        ),
        "processed": bulk_events(
            4, aggregates=4, event_type="test.cmd", status=EventStatus.PROCESSED
        ),
    }


def test_metric_selectors() -> None:
    assert outbox_backlog_count() == 0 and outbox_dead_count() == 0
    assert outbox_oldest_pending_age_seconds() == 0.0
    _seed()
    assert outbox_status_counts() == {
        "PENDING": 3,
        "PROCESSING": 1,
        "PROCESSED": 4,
        "DEAD": 2,
    }
    assert outbox_backlog_count() == 4
    assert outbox_dead_count() == 2
    oldest = OutboxEvent.objects.filter(status=EventStatus.PENDING).order_by("created_at")[0]
    assert outbox_oldest_pending_age_seconds(
        now=oldest.created_at + timedelta(seconds=90)
    ) == pytest.approx(90.0)


def test_aggregate_types_and_event_types_of_interest(handlers: Register) -> None:
    assert outbox_aggregate_types() == []
    bulk_events(3, aggregates=3)
    for aggregate_type in ("Contract", "ServiceDay", "Contract"):
        OutboxEvent.objects.create(
            event_type="test.kind",
            aggregate_type=aggregate_type,
            aggregate_id="x",
            status=EventStatus.PROCESSED,
        )
    assert outbox_aggregate_types() == ["Contract", "ServiceDay", "Test"]
    handlers(lambda e: None, "test.subscribed", name="test.subscribed")
    # Delivered events of unsubscribed types are not worth a whole-table DISTINCT.
    types = outbox_event_types_of_interest()
    assert {"test.effect", "test.subscribed"} <= set(types) and "test.kind" not in types
    assert types == sorted(types)


def test_stats_prints_one_line() -> None:
    _seed()
    with time_machine.travel(timezone.now(), tick=False):
        out = _run("stats")
    assert out.count("\n") == 1
    assert out.startswith("outbox: pending=3 processing=1 processed=4 dead=2 oldest_pending_age=")
    age = float(out.split("oldest_pending_age=")[1].rstrip("s\n"))
    assert 599 <= age <= 602


def test_dead_lists_the_oldest_first_within_the_limit() -> None:
    dead = _seed()["dead"]
    out = _run("dead", "--limit", "1").splitlines()
    assert len(out) == 2
    assert out[0].startswith(f"{dead[0].id} test.dead Test:agg-0 attempts=5 ")
    assert "error='second line'" in out[0]
    assert out[1] == "outbox dead: 1 shown of 2 DEAD events"


def test_retry_by_id_and_all_dead() -> None:
    seeded = _seed()
    dead, pending = seeded["dead"], seeded["pending"]
    out = _run("retry", str(dead[0].id), str(pending[0].id), str(uuid.uuid4()))
    assert (
        out == "outbox retry: 1 DEAD events queued for retry, 2 skipped (not found or not DEAD)\n"
    )
    revived = OutboxEvent.objects.get(pk=dead[0].pk)
    assert (revived.status, revived.attempts, revived.last_error) == (EventStatus.PENDING, 0, "")
    assert _run("retry", "--all-dead") == "outbox retry: 1 DEAD events queued for retry\n"
    assert outbox_dead_count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retry"], "at least one event id"),
        (["retry", "not-a-uuid"], "UUID expected"),
        (["retry", "--all-dead", str(uuid.UUID(int=1))], "not both"),
        (["dispatch", "--batch-size", "0"], "between 1 and 1000"),
        (["dispatch", "--once", "--loop"], "not allowed with argument"),
        (["dead", "--limit", "x"], "not a whole number"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_are_clear_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _run(*args)


def test_dispatch_once_drains_what_is_due(handlers: Register) -> None:
    seen: list[str] = []
    handlers(lambda e: seen.append(e.aggregate_id), "test.cmd", name="test.seen", external=True)
    _seed()
    out = _run("dispatch", "--once", "--batch-size", "2")
    assert sorted(seen) == ["agg-0", "agg-1", "agg-2"]
    assert out.startswith("outbox dispatch: 3 processed, 0 failed (retry scheduled), 0 dead, ")
    assert "in 2 batches" in out
    assert out.count("\n") == 1


def test_dispatch_loop_stops_cleanly_on_sigterm(handlers: Register) -> None:
    bulk_events(6, aggregates=6, event_type="test.loop")
    handled: list[int] = []

    def handle_then_get_terminated(event: OutboxEvent) -> None:
        handled.append(event.payload["n"])
        if len(handled) == 2:
            # What a platform does on shutdown; the handler is in the middle of a batch.
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    handlers(handle_then_get_terminated, "test.loop", external=True)
    out = _run("dispatch", "--loop", "--batch-size", "10")

    assert handled == [0, 1]
    assert "2 processed" in out and "4 released" in out and "stopped by SIGTERM" in out
    assert OutboxEvent.objects.filter(status=EventStatus.PENDING, locked_by="").count() == 4
    assert signal.getsignal(signal.SIGTERM) == previous  # handlers restored
