"""The outbox dispatcher: claim due events, run their handlers, record the outcomes in bulk.

One batch is:
1. **Claim** (committed before any handler runs): ``SELECT … FOR UPDATE SKIP LOCKED`` picks up
   to ``batch_size`` due PENDING events, which become PROCESSING with ``locked_by`` = this
   worker; on PostgreSQL one ``UPDATE … WHERE id = ANY(ARRAY(SELECT … SKIP LOCKED)) RETURNING``.
   Several workers (threads, processes, Celery tasks) claim disjoint batches. SQLite has no row
   locks (Django drops the clause there); its IMMEDIATE transactions serialize the claims.
2. **Handle** (outside that transaction): database handlers run per handler over the whole batch
   in one transaction together with their bulk ledger insert (one commit per handler and batch);
   if any event fails in it, that transaction is rolled back and replayed one event per
   transaction, so only the failing event loses its effect. Then, event by event, the external
   and ledger-less handlers run. The ledger (ProcessedEvent) is read once per batch, so a
   handler that already succeeded for an event is skipped on re-delivery.
3. **Record** (bulk): successes become PROCESSED in one UPDATE; failures get
   ``attempts + 1``, ``last_error`` and ``next_attempt_at = now + 1 s x 2^attempts + jitter``,
   or DEAD at ``max_attempts``. Every outcome UPDATE is guarded by ``locked_by``: a worker that
   lost its claim to stale recovery cannot overwrite the state another worker wrote.

**Per-aggregate order.** An event is claimable only while no older event of the same aggregate
(``aggregate_type``, ``aggregate_id``; older = ``created_at``, then id) is PENDING or PROCESSING,
whether that one is due or backing off. So a batch holds at most one event per aggregate, and a
younger event is never delivered before an older undelivered one. A DEAD event no longer holds
its aggregate back: DEAD needs an operator anyway, and blocking every later event of a contract
on it would be worse; retrying it delivers it after its younger siblings (an operator's choice).
Emitters lock the aggregate row before emitting (STYLE.md), which makes ``created_at`` follow
commit order per aggregate.

**Stale claims.** A PROCESSING event whose claim is older than 60 s belongs to a worker that
died (or hung): it returns to PENDING with ``attempts + 1`` (so an event that kills its worker
every time ends DEAD instead of looping), due at once.

**Stopping.** ``should_stop`` (SIGTERM in the command loop, the time budget of the Celery task)
is checked between events: the events of the batch not yet finished are released (PENDING, lock
cleared, attempts unchanged) for another worker; the finished ones are recorded as usual. A
batch that has run for 30 s (slow external handlers) releases its rest the same way, far from
the 60 s stale limit. An exception that escapes (Celery's soft time limit, a lost connection)
releases them too.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Protocol

from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from outbox.models import OPEN_STATUSES, EventStatus, OutboxEvent, ProcessedEvent
from outbox.registry import RegisteredHandler, handlers_for
from outbox.rules import STALE_CLAIM_SECONDS, error_text, is_exhausted, retry_delay

logger = logging.getLogger("chefops.outbox")

DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 1000
# A batch stops starting events after this long and releases the rest, so a batch of slow
# handlers (e-mail) never holds a claim anywhere near the 60 s after which others take it over.
MAX_BATCH_SECONDS = 30.0
# Stale recovery is one indexed UPDATE; once every few seconds per worker is plenty.
RECOVERY_INTERVAL_SECONDS = 5.0


class RandomSource(Protocol):
    def random(self) -> float: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-100:]


@dataclass
class DispatchStats:
    claimed: int = 0
    processed: int = 0
    failed: int = 0  # back to PENDING with a backoff
    dead: int = 0
    released: int = 0
    recovered: int = 0
    batches: int = 0

    def merge(self, other: DispatchStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> str:
        return (
            f"{self.processed} processed, {self.failed} failed (retry scheduled), "
            f"{self.dead} dead, {self.released} released, {self.recovered} recovered "
            f"in {self.batches} batches"
        )


class OutboxDispatcher:
    """Claims and handles outbox events for one worker (thread, process or Celery task run).

    ``rng`` supplies the retry jitter (inject a fixed one in tests); ``should_stop`` is polled
    between events.
    """

    def __init__(
        self,
        *,
        worker_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        rng: RandomSource | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
        self.worker_id = (worker_id or default_worker_id())[:100]
        self.batch_size = batch_size
        self._rng: RandomSource = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._should_stop = should_stop or (lambda: False)
        self._deadline: float | None = None
        self._last_recovery: float | None = None

    # --- the loop ---------------------------------------------------------------------------

    def run(
        self, *, budget_seconds: float | None = None, max_batches: int | None = None
    ) -> DispatchStats:
        """Dispatch batches until nothing is claimable, the budget is spent or a stop is asked.

        The budget bounds when a new batch may start and is also polled between events, so a
        run ends at most one handler call after it (the rest of that batch is released).
        """
        total = DispatchStats()
        self._deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        try:
            while not self.stopping():
                if max_batches is not None and total.batches >= max_batches:
                    break
                stats = self.dispatch_batch()
                total.merge(stats)
                if stats.claimed == 0:
                    break
        finally:
            self._deadline = None
        return total

    def stopping(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return True
        return self._should_stop()

    def dispatch_batch(self) -> DispatchStats:
        recovered = self._recover_if_due()
        events = self.claim()
        stats = self.process(events) if events else DispatchStats()
        stats.recovered += recovered
        return stats

    def _recover_if_due(self) -> int:
        clock = time.monotonic()
        if (
            self._last_recovery is not None
            and clock - self._last_recovery < RECOVERY_INTERVAL_SECONDS
        ):
            return 0
        self._last_recovery = clock
        return recover_stale_claims()

    # --- claim ------------------------------------------------------------------------------

    def claim(self) -> list[OutboxEvent]:
        now = timezone.now()
        if connection.vendor == "postgresql":
            events = list(
                OutboxEvent.objects.raw(
                    _CLAIM_SQL,
                    {
                        "now": now,
                        "worker": self.worker_id,
                        "limit": self.batch_size,
                        "pending": EventStatus.PENDING.value,
                        "processing": EventStatus.PROCESSING.value,
                    },
                )
            )
            # RETURNING gives no order; handle the batch oldest first.
            events.sort(key=lambda e: (e.next_attempt_at, e.created_at))
            return events
        older_open = OutboxEvent.objects.filter(
            aggregate_type=OuterRef("aggregate_type"),
            aggregate_id=OuterRef("aggregate_id"),
            status__in=OPEN_STATUSES,
        ).filter(
            Q(created_at__lt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
        )
        with transaction.atomic():
            # SQLite: no row locks (Django drops FOR UPDATE); the IMMEDIATE transaction
            # serializes claims instead. The query is the same as the PostgreSQL one.
            events = list(
                OutboxEvent.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=EventStatus.PENDING, next_attempt_at__lte=now)
                .filter(~Exists(older_open))
                .order_by("next_attempt_at", "created_at")[: self.batch_size]
            )
            if events:
                OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(
                    status=EventStatus.PROCESSING, locked_at=now, locked_by=self.worker_id
                )
        for event in events:
            event.status = EventStatus.PROCESSING
            event.locked_at = now
            event.locked_by = self.worker_id
        return events

    # --- handle -----------------------------------------------------------------------------

    def process(self, events: Sequence[OutboxEvent]) -> DispatchStats:
        """Run the handlers of claimed events and record each outcome (see the module doc)."""
        stats = DispatchStats(claimed=len(events), batches=1)
        errors: dict[uuid.UUID, list[str]] = {}
        finished: list[OutboxEvent] = []
        try:
            if not self.stopping():
                self._handle(events, errors, finished)
            stats.released = self.release(_unfinished(events, finished))
            self._record(finished, errors, stats)
        except BaseException:
            # Whatever interrupted us (soft time limit, lost connection, Ctrl-C): hand the
            # unfinished events back now instead of leaving them to the 60 s stale recovery.
            # Both writes are guarded by our claim, so repeating them is harmless.
            self._settle_after_crash(events, errors, finished)
            raise
        return stats

    def _handle(
        self,
        events: Sequence[OutboxEvent],
        errors: dict[uuid.UUID, list[str]],
        finished: list[OutboxEvent],
    ) -> None:
        started = time.monotonic()
        by_type: dict[str, list[RegisteredHandler]] = {}
        for event in events:
            if event.event_type not in by_type:
                by_type[event.event_type] = handlers_for(event.event_type)
        done = _ledger_entries(
            [e.id for e in events if any(h.ledger for h in by_type[e.event_type])]
        )

        groups: dict[str, tuple[RegisteredHandler, list[OutboxEvent]]] = {}
        for event in events:
            for handler in by_type[event.event_type]:
                if handler.runs_in_ledger_transaction and (event.id, handler.name) not in done:
                    groups.setdefault(handler.name, (handler, []))[1].append(event)
        for handler, group in groups.values():
            for event_id, message in self._run_in_ledger_transaction(handler, group).items():
                errors.setdefault(event_id, []).append(message)

        for event in events:
            if self.stopping() or time.monotonic() - started >= MAX_BATCH_SECONDS:
                return
            for handler in by_type[event.event_type]:
                if handler.runs_in_ledger_transaction:
                    continue
                if handler.ledger and (event.id, handler.name) in done:
                    continue
                failure = self._run_outside_transaction(handler, event)
                if failure is not None:
                    errors.setdefault(event.id, []).append(failure)
            finished.append(event)

    def _run_in_ledger_transaction(
        self, handler: RegisteredHandler, events: list[OutboxEvent]
    ) -> dict[uuid.UUID, str]:
        if self._run_batch_in_one_transaction(handler, events):
            return {}
        failures: dict[uuid.UUID, str] = {}
        for event in events:
            message = self._run_single_in_ledger_transaction(handler, event)
            if message is not None:
                failures[event.id] = message
        return failures

    def _run_batch_in_one_transaction(
        self, handler: RegisteredHandler, events: list[OutboxEvent]
    ) -> bool:
        """The fast path: one commit for the whole batch. False if anything failed (all of it
        rolled back), and the caller replays one event per transaction to isolate the failure."""
        try:
            with transaction.atomic():
                # Ledger rows first: a concurrent delivery of the same (event, handler) waits on
                # the unique index and then fails before running the handler a second time.
                _ledger_insert(handler.name, [e.id for e in events], timezone.now())
                for event in events:
                    handler.func(event)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - isolated and reported by the replay
            logger.debug("outbox handler %s: batch rolled back (%r); replaying", handler.name, exc)
            return False
        return True

    def _run_single_in_ledger_transaction(
        self, handler: RegisteredHandler, event: OutboxEvent
    ) -> str | None:
        try:
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        ProcessedEvent.objects.create(event_id=event.id, handler_name=handler.name)
                except IntegrityError:
                    logger.info(
                        "outbox handler %s already applied event %s; skipped",
                        handler.name,
                        event.id,
                    )
                    return None
                handler.func(event)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - any handler error is a failed delivery
            return _failure(handler, event, exc)
        return None

    def _run_outside_transaction(
        self, handler: RegisteredHandler, event: OutboxEvent
    ) -> str | None:
        try:
            handler.func(event)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # noqa: BLE001 - any handler error is a failed delivery
            return _failure(handler, event, exc)
        if handler.ledger:
            ProcessedEvent.objects.bulk_create(
                [ProcessedEvent(event_id=event.id, handler_name=handler.name)],
                ignore_conflicts=True,
            )
        return None

    # --- record -----------------------------------------------------------------------------

    def _mine(self, ids: list[uuid.UUID]) -> QuerySet[OutboxEvent]:
        return OutboxEvent.objects.filter(
            _id_in(OutboxEvent, "id", ids),
            status=EventStatus.PROCESSING,
            locked_by=self.worker_id,
        )

    def release(self, events: Sequence[OutboxEvent]) -> int:
        """Give claimed, unfinished events back (PENDING, attempts unchanged)."""
        if not events:
            return 0
        return self._mine([e.id for e in events]).update(
            status=EventStatus.PENDING, locked_at=None, locked_by=""
        )

    def _record(
        self,
        finished: Sequence[OutboxEvent],
        errors: dict[uuid.UUID, list[str]],
        stats: DispatchStats,
    ) -> None:
        now = timezone.now()
        succeeded = [e.id for e in finished if e.id not in errors]
        if succeeded:
            stats.processed += self._mine(succeeded).update(
                status=EventStatus.PROCESSED, processed_at=now, locked_at=None, locked_by=""
            )
            if stats.processed < len(succeeded):
                logger.warning(
                    "outbox worker %s lost %d claims to stale recovery before recording them",
                    self.worker_id,
                    len(succeeded) - stats.processed,
                )
        # Failures are rare and each has its own backoff: one UPDATE per failed event.
        for event in finished:
            if event.id in errors:
                self._record_failure(event, "\n".join(errors[event.id]), now, stats)

    def _record_failure(
        self, event: OutboxEvent, last_error: str, now: datetime, stats: DispatchStats
    ) -> None:
        attempts = event.attempts + 1
        mine = self._mine([event.id])
        common = {"attempts": attempts, "last_error": last_error, "locked_at": None}
        if is_exhausted(attempts=attempts, max_attempts=event.max_attempts):
            if mine.update(status=EventStatus.DEAD, locked_by="", **common):
                stats.dead += 1
                logger.error(
                    "outbox event %s (%s) is DEAD after %d attempts: %s",
                    event.id,
                    event.event_type,
                    attempts,
                    last_error,
                    extra=_event_extra(event),
                )
            return
        next_attempt_at = now + retry_delay(attempts=attempts, jitter=self._jitter())
        if mine.update(
            status=EventStatus.PENDING, locked_by="", next_attempt_at=next_attempt_at, **common
        ):
            stats.failed += 1

    def _jitter(self) -> float:
        # Clamp so that an injected source returning exactly 1.0 cannot break the rule.
        return min(max(self._rng.random(), 0.0), 0.999999)

    def _settle_after_crash(
        self,
        events: Sequence[OutboxEvent],
        errors: dict[uuid.UUID, list[str]],
        finished: list[OutboxEvent],
    ) -> None:
        try:
            self.release(_unfinished(events, finished))
            self._record(finished, errors, DispatchStats())
        except Exception:
            logger.exception("outbox worker %s could not release its claims", self.worker_id)


def recover_stale_claims(*, stale_after: timedelta | None = None) -> int:
    """Return PROCESSING events whose claim is older than 60 s to PENDING (or DEAD when that
    was their last attempt), due at once. Returns how many were recovered."""
    cutoff = timezone.now() - (stale_after or timedelta(seconds=STALE_CLAIM_SECONDS))
    recovered = OutboxEvent.objects.filter(
        status=EventStatus.PROCESSING, locked_at__lte=cutoff
    ).update(
        status=Case(
            When(attempts__gte=F("max_attempts") - 1, then=Value(EventStatus.DEAD.value)),
            default=Value(EventStatus.PENDING.value),
        ),
        attempts=F("attempts") + 1,
        last_error="claim expired: the worker holding it died or hung",
        locked_at=None,
        locked_by="",
    )
    if recovered:
        logger.warning("outbox: recovered %d stale claims", recovered)
    return recovered


# Only the models' own table and column names are interpolated into these statements. The
# claim names the columns it returns (never ``e.*``): a worker of the previous release, whose
# prepared claim outlives a deploy's added column, must not see its result type change.
_CLAIM_COLUMNS = ", ".join(f'e."{field.column}"' for field in OutboxEvent._meta.concrete_fields)
_CLAIM_SQL = f"""
UPDATE {OutboxEvent._meta.db_table} AS e
   SET status = %(processing)s, locked_at = %(now)s, locked_by = %(worker)s
 WHERE e.id = ANY(ARRAY(
       SELECT c.id FROM {OutboxEvent._meta.db_table} AS c
        WHERE c.status = %(pending)s AND c.next_attempt_at <= %(now)s
          AND NOT EXISTS (
              SELECT 1 FROM {OutboxEvent._meta.db_table} AS o
               WHERE o.aggregate_type = c.aggregate_type AND o.aggregate_id = c.aggregate_id
                 AND o.status IN (%(pending)s, %(processing)s)
                 AND (o.created_at, o.id) < (c.created_at, c.id))
        ORDER BY c.next_attempt_at, c.created_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED))
RETURNING {_CLAIM_COLUMNS}
"""  # noqa: S608

_LEDGER_INSERT_SQL = f"""
INSERT INTO {ProcessedEvent._meta.db_table} (event_id, handler_name, processed_at)
SELECT unnest(%s::uuid[]), %s, %s
"""


def _id_in(model: type[Model], field: str, ids: list[uuid.UUID]) -> Q | RawSQL:
    """``field IN ids`` as a filter (``field`` is also the column name).

    On PostgreSQL ``= ANY(array)``: one parameter instead of one placeholder per id (rendering
    and parsing those cost more than the statement), planned as an index lookup."""
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        column = f"{quote(model._meta.db_table)}.{quote(field)}"
        # Only quoted names of our own table and column go into the SQL; the ids are a parameter.
        return RawSQL(f"{column} = ANY(%s::uuid[])", (ids,), output_field=BooleanField())  # noqa: S611
    return Q(**{f"{field}__in": ids})


def _ledger_insert(handler_name: str, event_ids: list[uuid.UUID], now: datetime) -> None:
    """Ledger rows of one handler for many events; a row that exists raises IntegrityError."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LEDGER_INSERT_SQL, [event_ids, handler_name, now])
        return
    ProcessedEvent.objects.bulk_create(
        [ProcessedEvent(event_id=i, handler_name=handler_name, processed_at=now) for i in event_ids]
    )


def _ledger_entries(event_ids: list[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    if not event_ids:
        return set()
    return set(
        ProcessedEvent.objects.filter(_id_in(ProcessedEvent, "event_id", event_ids)).values_list(
            "event_id", "handler_name"
        )
    )


def _unfinished(
    events: Sequence[OutboxEvent], finished: Sequence[OutboxEvent]
) -> list[OutboxEvent]:
    done = {e.id for e in finished}
    return [e for e in events if e.id not in done]


def _failure(handler: RegisteredHandler, event: OutboxEvent, exc: Exception) -> str:
    logger.warning(
        "outbox handler %s failed on event %s (%s, attempt %d)",
        handler.name,
        event.id,
        event.event_type,
        event.attempts + 1,
        exc_info=exc,
        extra=_event_extra(event),
    )
    return error_text(handler.name, exc)


def _event_extra(event: OutboxEvent) -> dict[str, object]:
    return {
        "event_id": str(event.id),
        "event_type": event.event_type,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
    }
