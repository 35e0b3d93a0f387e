"""Several dispatchers at once on PostgreSQL: threads, OS processes, and a process killed with
SIGKILL mid-batch. Each handler's effect is a row written in the same transaction as its
ledger row, so "exactly once" is counted in the database."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from outbox.dispatcher import DispatchStats, OutboxDispatcher
from outbox.models import EventStatus, OutboxEvent, ProcessedEvent
from outbox.tests.effect_handlers import HANDLER_A, HANDLER_B, effect_rows
from outbox.tests.support import bulk_events, subprocess_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 2000
AGGREGATES = 400  # five events per aggregate, so the order rule is exercised too


def _assert_each_effect_exactly_once_and_in_order(events: list[OutboxEvent]) -> None:
    assert OutboxEvent.objects.filter(status=EventStatus.PROCESSED).count() == len(events)
    rows = effect_rows()
    per_key = Counter((event_id, handler) for _id, event_id, handler, _agg in rows)
    expected = {(str(e.id), h) for e in events for h in (HANDLER_A, HANDLER_B)}
    assert set(per_key) == expected
    assert set(per_key.values()) == {1}
    assert ProcessedEvent.objects.count() == 2 * len(events)
    # Per aggregate, effects committed in creation order (the row id is the commit order).
    created = {str(e.id): e.payload["n"] for e in events}
    by_aggregate: dict[str, list[int]] = defaultdict(list)
    for _id, event_id, handler, aggregate in rows:
        if handler == HANDLER_A:
            by_aggregate[aggregate].append(created[event_id])
    assert all(seq == sorted(seq) for seq in by_aggregate.values())


def _spawn(
    *args: str, sleep: float = 0.0, app_name: str = "outbox-test", ready: Path | None = None
) -> subprocess.Popen[str]:
    env = subprocess_env()
    env["DATABASE_URL"] += f"?application_name={app_name}"
    env["OUTBOX_TEST_HANDLER_SLEEP"] = str(sleep)
    if ready is not None:
        env["OUTBOX_TEST_READY_FILE"] = str(ready)
    return subprocess.Popen(
        [sys.executable, "-m", "outbox.tests.dispatcher_proc", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the audit lines
        text=True,
    )


def _connected(app_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            [app_name, connection.settings_dict["NAME"]],
        )
        return int(cursor.fetchone()[0])


def _inside_the_slow_handler() -> bool:
    """A batch is claimed and handler A (the slow one) has not committed it yet: a kill now
    lands well inside the batch, not in the few milliseconds between two batches."""
    claimed = list(
        OutboxEvent.objects.filter(status=EventStatus.PROCESSING).values_list("pk", flat=True)
    )
    return (
        bool(claimed)
        and not ProcessedEvent.objects.filter(event_id__in=claimed, handler_name=HANDLER_A).exists()
    )


THREADS = 4


@pytest.fixture
def room_for_every_thread() -> Iterator[None]:
    """With a connection pool (DB_POOL, as in the gate's PgBouncer run) each thread holds a
    pooled connection for its whole run, and the pool sized for a web worker (3) is smaller
    than the threads plus this one: a thread would wait for another to finish, and fail once
    the pool's 2 s timeout passed (seen under the gate's CPU hog). For this test the pool
    holds one connection per thread; without a pool there is nothing to do."""
    options = connection.settings_dict["OPTIONS"]
    configured = options.get("pool")
    if not configured:
        yield
        return

    wrapper: Any = connection  # the PostgreSQL backend's (close_pool is not in the stubs)

    def replace_pool(settings: dict[str, Any]) -> None:
        wrapper.close()  # back to the pool, which closing then closes
        wrapper.close_pool()
        options["pool"] = settings

    replace_pool({**configured, "max_size": max(configured["max_size"], THREADS + 1)})
    assert wrapper.pool.max_size == max(configured["max_size"], THREADS + 1)
    try:
        yield
    finally:
        replace_pool(configured)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_threads_deliver_every_event_exactly_once(
    effects: None, room_for_every_thread: None
) -> None:
    events = bulk_events(EVENTS, aggregates=AGGREGATES)
    start = threading.Barrier(THREADS)
    results: list[DispatchStats] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait(timeout=30)
            results.append(OutboxDispatcher(worker_id=f"thread-{n}", batch_size=100).run())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == THREADS
    # A thread stops when it finds nothing claimable; the last one standing drains the rest.
    leftover = OutboxDispatcher().run()
    assert sum(r.processed for r in results) + leftover.processed == EVENTS
    _assert_each_effect_exactly_once_and_in_order(events)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_deliver_every_event_exactly_once(effects: None, tmp_path: Path) -> None:
    ready = [tmp_path / f"dispatcher-{n}.ready" for n in range(2)]
    procs = [
        _spawn(
            "dispatch", "--loop", "--batch-size", "50", "--idle-sleep", "0.1", sleep=0.0005, ready=r
        )
        for r in ready
    ]
    try:
        # Both connected and starting to poll before the events appear, so they really compete
        # for them. (Not counted in pg_stat_activity: through PgBouncer in transaction mode two
        # idle-polling clients may share one server connection.)
        wait_until(lambda: all(r.exists() for r in ready), timeout=60, what="both dispatchers")
        events = bulk_events(EVENTS, aggregates=AGGREGATES)
        wait_until(
            lambda: OutboxEvent.objects.filter(status=EventStatus.PROCESSED).count() == EVENTS,
            timeout=60,
            what="every event processed",
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=30)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    processed = []
    for out in outputs:
        summary = out.strip().splitlines()[-1]
        assert "stopped by SIGTERM" in summary
        processed.append(int(summary.split("outbox dispatch: ")[1].split(" processed")[0]))
    assert sum(processed) == EVENTS and min(processed) > 0
    _assert_each_effect_exactly_once_and_in_order(events)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_killed_mid_batch_loses_nothing_and_repeats_nothing(effects: None) -> None:
    events = bulk_events(300, aggregates=100)
    # 10 ms per event in handler A: a batch of 20 takes ~0.2 s, most of it inside the batch.
    proc = _spawn("dispatch", "--loop", "--batch-size", "20", sleep=0.01, app_name="outbox-kill")
    try:
        wait_until(
            lambda: len(effect_rows()) >= 80 and _inside_the_slow_handler(),
            timeout=60,
            what="a few batches done and the next one inside its slow handler",
        )
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    wait_until(lambda: _connected("outbox-kill") == 0, timeout=30, what="the killed session")
    stuck = set(
        OutboxEvent.objects.filter(status=EventStatus.PROCESSING).values_list("pk", flat=True)
    )
    assert stuck, "the kill should have left a claimed batch behind"

    # Before 60 s the claim is respected: others (and their younger siblings) wait.
    OutboxDispatcher(worker_id="rescuer").run()
    assert stuck == set(
        OutboxEvent.objects.filter(status=EventStatus.PROCESSING).values_list("pk", flat=True)
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        rescued = OutboxDispatcher(worker_id="rescuer").run()
    assert rescued.recovered == len(stuck)
    _assert_each_effect_exactly_once_and_in_order(events)
    assert set(OutboxEvent.objects.filter(pk__in=stuck).values_list("attempts", flat=True)) == {1}
