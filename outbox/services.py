"""Writing events into the outbox (always inside the caller's transaction)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from chefops.logging import current_request_id
from outbox.models import OutboxEvent


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
    """
    if not connection.in_atomic_block:
        raise OutboxError("outbox_event_emit must be called inside transaction.atomic()")
    metadata = _actor_metadata(actor)
    if request_id := current_request_id():
        metadata["requestId"] = request_id
    event = OutboxEvent.objects.create(
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload,
        metadata=metadata,
    )
    _nudge_dispatcher_on_commit()
    return event


def _nudge_dispatcher_on_commit() -> None:
    from outbox.tasks import dispatch

    dispatch.delay_on_commit()  # type: ignore[attr-defined]  # celery-types lags Celery 5.4
