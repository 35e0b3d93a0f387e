"""Handlers of the outbox app itself: the audit log line written for every event."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from outbox.registry import outbox_handler

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

AUDIT_HANDLER = "outbox.audit_log"
audit_logger = logging.getLogger("chefops.audit")


# ledger=False: a log line is safe to repeat on a re-delivery (it carries the event id and the
# attempt), and a ledger row per event would double the dispatcher's write load.
@outbox_handler("*", name=AUDIT_HANDLER, ledger=False)
def audit_log_line(event: OutboxEvent) -> None:
    if not audit_logger.isEnabledFor(logging.INFO):
        return
    metadata = event.metadata or {}
    extra: dict[str, object] = {
        "event_id": str(event.id),
        "event_type": event.event_type,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "occurred_at": event.created_at.isoformat(),
        "attempt": event.attempts + 1,
        "metadata": metadata,
    }
    if request_id := metadata.get("requestId"):
        # The line then joins the log lines of the request that caused the event.
        extra["request_id"] = request_id
    audit_logger.info(
        "event %s %s:%s %s",
        event.event_type,
        event.aggregate_type,
        event.aggregate_id,
        event.id,
        extra=extra,
    )
