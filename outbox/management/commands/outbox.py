"""`manage.py outbox stats | dead | retry | dispatch`: operating the transactional outbox.

Each subcommand ends with a one-line summary. `dispatch --loop` is a standalone dispatcher
(an alternative to the Celery task): SIGTERM or SIGINT lets it finish or release the batch in
hand and exit 0.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from outbox.dispatcher import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, DispatchStats, OutboxDispatcher
from outbox.selectors import (
    outbox_dead_count,
    outbox_dead_events,
    outbox_oldest_pending_age_seconds,
    outbox_status_counts,
)
from outbox.services import outbox_dead_events_retry


def _bounded_int(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


class _StopFlag:
    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def __call__(self) -> bool:
        return self.requested


@contextmanager
def _stop_on_signals(flag: _StopFlag) -> Iterator[None]:
    """SIGTERM/SIGINT only set the flag: the dispatcher then finishes or releases its batch."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def request_stop(signum: int, frame: FrameType | None) -> None:
        flag.requested = True
        flag.signal_name = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Command(BaseCommand):
    help = "Operate the transactional outbox: stats | dead | retry | dispatch."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        sub.add_parser("stats", help="events per status and the age of the oldest pending one")

        dead = sub.add_parser("dead", help="list DEAD events, oldest first")
        dead.add_argument("--limit", type=_bounded_int(1, 10_000), default=50)

        retry = sub.add_parser("retry", help="DEAD → PENDING (attempts reset, due now)")
        retry.add_argument("ids", nargs="*", metavar="ID", help="event ids (UUID)")
        retry.add_argument("--all-dead", action="store_true", help="every DEAD event")

        dispatch = sub.add_parser("dispatch", help="dispatch due events in this process")
        mode = dispatch.add_mutually_exclusive_group()
        mode.add_argument(
            "--once", action="store_true", help="until nothing is due, then exit (default)"
        )
        mode.add_argument(
            "--loop", action="store_true", help="keep dispatching until SIGTERM/SIGINT"
        )
        dispatch.add_argument(
            "--batch-size", type=_bounded_int(1, MAX_BATCH_SIZE), default=DEFAULT_BATCH_SIZE
        )
        dispatch.add_argument(
            "--idle-sleep",
            type=_positive_float,
            default=1.0,
            help="seconds to wait when nothing is due (--loop)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = options["subcommand"]
        if subcommand == "stats":
            self._stats()
        elif subcommand == "dead":
            self._dead(options["limit"])
        elif subcommand == "retry":
            self._retry(options["ids"], options["all_dead"])
        else:
            self._dispatch(
                loop=options["loop"],
                batch_size=options["batch_size"],
                idle_sleep=options["idle_sleep"],
            )

    def _stats(self) -> None:
        counts = outbox_status_counts()
        age = outbox_oldest_pending_age_seconds()
        parts = " ".join(f"{status.lower()}={n}" for status, n in counts.items())
        self.stdout.write(f"outbox: {parts} oldest_pending_age={age:.1f}s")

    def _dead(self, limit: int) -> None:
        events = outbox_dead_events(limit=limit)
        for event in events:
            error = (event.last_error.splitlines() or [""])[-1][:200]
            self.stdout.write(
                f"{event.id} {event.event_type} {event.aggregate_type}:{event.aggregate_id} "
                f"attempts={event.attempts} created={event.created_at:%Y-%m-%dT%H:%M:%SZ} "
                f"error={error!r}"
            )
        self.stdout.write(f"outbox dead: {len(events)} shown of {outbox_dead_count()} DEAD events")

    def _retry(self, raw_ids: list[str], all_dead: bool) -> None:
        if all_dead and raw_ids:
            raise CommandError("give event ids or --all-dead, not both")
        if not all_dead and not raw_ids:
            raise CommandError("give at least one event id, or --all-dead")
        ids: list[uuid.UUID] = []
        for raw in raw_ids:
            try:
                ids.append(uuid.UUID(raw))
            except ValueError:
                raise CommandError(f"not an event id (UUID expected): {raw!r}") from None
        count = outbox_dead_events_retry(ids=ids, all_dead=all_dead)
        if all_dead:
            self.stdout.write(f"outbox retry: {count} DEAD events queued for retry")
        else:
            skipped = len(set(ids)) - count
            self.stdout.write(
                f"outbox retry: {count} DEAD events queued for retry, "
                f"{skipped} skipped (not found or not DEAD)"
            )

    def _dispatch(self, *, loop: bool, batch_size: int, idle_sleep: float) -> None:
        flag = _StopFlag()
        dispatcher = OutboxDispatcher(batch_size=batch_size, should_stop=flag)
        total = DispatchStats()
        started = time.monotonic()
        with _stop_on_signals(flag):
            while True:
                try:
                    total.merge(dispatcher.run())
                except DatabaseError as exc:
                    if not loop:
                        raise
                    # A restarting database must not kill a long-running dispatcher.
                    self.stderr.write(f"outbox dispatch: database error, retrying: {exc}")
                    close_old_connections()
                if not loop or flag.requested:
                    break
                deadline = time.monotonic() + idle_sleep
                while not flag.requested and time.monotonic() < deadline:
                    time.sleep(min(0.1, idle_sleep))
                if flag.requested:
                    break
        elapsed = time.monotonic() - started
        rate = total.processed / elapsed if elapsed > 0 else 0.0
        stopped = f", stopped by {flag.signal_name}" if flag.signal_name else ""
        self.stdout.write(
            f"outbox dispatch: {total.summary()}, {elapsed:.2f}s ({rate:.0f} events/s)"
            f"{stopped}; worker {dispatcher.worker_id}"
        )
