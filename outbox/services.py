"""Writes of the outbox: emitting events (inside the caller's transaction), dispatching them,
and the operator actions (retry DEAD events, make events due now)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from chefops.logging import current_request_id
from outbox.dispatcher import DispatchStats, OutboxDispatcher, RandomSource
from outbox.models import EventStatus, OutboxEvent

logger = logging.getLogger("chefops.outbox")


class OutboxError(RuntimeError):
    pass


def _actor_metadata(actor: Any) -> dict[str, Any]:
    if actor is None:
        return {}
    company = getattr(actor, "company", None)
    return {
        "actorUserId": str(actor.pk) if getattr(actor, "pk", None) else None,
        "actorEmail": getattr(actor, "email", None),
        "actorRole": getattr(actor, "role", None),
        "actorCompanyId": str(company.pk) if company is not None else None,
    }


def outbox_event_emit(
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: Any,
    payload: dict[str, Any],
    actor: Any = None,
) -> OutboxEvent:
    """Store an event in the current transaction; nudge the dispatcher once it commits.

    Raises OutboxError outside ``transaction.atomic()``: an event written in autocommit mode
    could outlive a change that is later rolled back, or vanish while the change stays.
    A transaction that emits many events sends one nudge.
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutboxError("outbox_event_emit must be called inside transaction.atomic()")
    metadata = _actor_metadata(actor)
    if request_id := current_request_id():
        metadata["requestId"] = request_id
    now = timezone.now()
    created_at = _creation_time(now)
    event = OutboxEvent.objects.create(
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload,
        metadata=metadata,
        created_at=created_at,
        next_attempt_at=now,
    )
    _nudge_dispatcher_on_commit()
    return event


_clock_lock = threading.Lock()
_last_creation: datetime | None = None


def _creation_time(now: datetime) -> datetime:
    """``timezone.now()``, but strictly increasing within the process across a stalled clock.

    ``created_at`` orders the events of an aggregate; two events emitted in one transaction
    under a clock that does not move (a coarse clock, a frozen test clock) must keep their
    order. Backward jumps of more than a second (clock set back, tests travelling in time) are
    taken as they are rather than dragging every later event into the future.
    """
    global _last_creation
    with _clock_lock:
        last = _last_creation
        if last is not None and now <= last < now + timedelta(seconds=1):
            now = last + timedelta(microseconds=1)
        _last_creation = now
    return now


class _DispatchNudge:
    """The after-commit callback that enqueues ``outbox.dispatch``.

    One per transaction: emit looks for a pending one in the connection's on-commit list (a
    callback registered inside a savepoint that rolled back is already gone from that list).
    ``sent`` covers test helpers that run callbacks without clearing the list.

    The change is committed when ``send`` runs, so a broker that cannot be reached must not
    turn the request into an error: the event is stored, and the beat sweep (every 5 s)
    delivers it once a worker can be reached. The publish is tried once (``retry=False``;
    the broker's connection options in settings bound each attempt to seconds) and a failure
    is one warning line. Registered as a bound method: Django names the callback by its
    ``__qualname__`` when it logs one that raised.
    """

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False

    def send(self) -> None:
        from kombu.exceptions import OperationalError as BrokerUnavailable

        from outbox.tasks import dispatch

        self.sent = True
        try:
            dispatch.apply_async(retry=False)
        except BrokerUnavailable as exc:
            logger.warning(
                "outbox: dispatcher not nudged, broker unreachable (%s); "
                "the beat sweep delivers the events",
                exc,
            )


def _nudge_dispatcher_on_commit() -> None:
    connection = transaction.get_connection()
    for _savepoints, func, _robust in connection.run_on_commit:
        nudge = getattr(func, "__self__", None)
        if isinstance(nudge, _DispatchNudge) and not nudge.sent:
            return
    # robust: whatever else goes wrong in the nudge is logged by Django, never raised into
    # the committed request (and never skips the on-commit callbacks after it).
    transaction.on_commit(_DispatchNudge().send, robust=True)


def outbox_dispatch(
    *,
    batch_size: int | None = None,
    budget_seconds: float | None = None,
    max_batches: int | None = None,
    worker_id: str | None = None,
    rng: RandomSource | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DispatchStats:
    """Dispatch due events until none is claimable, the budget is spent or a stop is asked."""
    kwargs: dict[str, Any] = {"worker_id": worker_id, "rng": rng, "should_stop": should_stop}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    dispatcher = OutboxDispatcher(**kwargs)
    return dispatcher.run(budget_seconds=budget_seconds, max_batches=max_batches)


def outbox_dead_events_retry(
    *, ids: Iterable[uuid.UUID] | None = None, all_dead: bool = False
) -> int:
    """DEAD → PENDING with attempts 0, error cleared, due now. Returns how many were revived."""
    events = OutboxEvent.objects.filter(status=EventStatus.DEAD)
    if not all_dead:
        wanted = list(ids or [])
        if not wanted:
            return 0
        events = events.filter(pk__in=wanted)
    with transaction.atomic():
        count = events.update(
            status=EventStatus.PENDING,
            attempts=0,
            last_error="",
            next_attempt_at=timezone.now(),
            locked_at=None,
            locked_by="",
        )
        if count:
            _nudge_dispatcher_on_commit()
    if count:
        logger.info("outbox: %d DEAD events queued for retry", count)
    return count


def outbox_events_expedite(*, ids: Iterable[uuid.UUID]) -> int:
    """Make PENDING events due now (skipping their backoff) and nudge the dispatcher."""
    wanted = list(ids)
    with transaction.atomic():
        count = 0
        if wanted:
            count = OutboxEvent.objects.filter(
                pk__in=wanted, status=EventStatus.PENDING, next_attempt_at__gt=timezone.now()
            ).update(next_attempt_at=timezone.now())
        _nudge_dispatcher_on_commit()
    return count
