"""Handler registry: `@outbox_handler("contract.paused")` subscribes a function to event types.

A handler receives the OutboxEvent. Its idempotency key is (event id, handler name):
- ``external=False`` (default): the handler writes only to the database; the dispatcher runs it
  and records ProcessedEvent in one transaction, so the effect and the ledger row commit together.
  Several events of a batch may share that transaction (one commit per handler and batch), so
  such a handler must not talk to the outside world and must be quick.
- ``external=True`` (e-mail, HTTP): the dispatcher records ProcessedEvent right after the handler
  succeeds; the handler should pass ``event.id`` on (e.g. as Message-ID) so receivers can
  de-duplicate the rare re-delivery after a crash between the two.
- ``ledger=False``: no ProcessedEvent row at all; the handler runs on every delivery attempt.
  Only for effects whose repetition is harmless and carries the event id (the audit log line):
  it spares one ledger write per event.
Handlers run in this order for an event: database handlers first, then the others in
registration order. A failing handler does not stop the others; the event is retried and the
handlers already recorded in the ledger are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

HandlerFunc = Callable[["OutboxEvent"], None]


@dataclass(frozen=True)
class RegisteredHandler:
    name: str
    event_types: frozenset[str]
    func: HandlerFunc
    external: bool
    ledger: bool = True

    def handles(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types

    @property
    def runs_in_ledger_transaction(self) -> bool:
        return self.ledger and not self.external


_REGISTRY: dict[str, RegisteredHandler] = {}


def outbox_handler(
    *event_types: str, name: str | None = None, external: bool = False, ledger: bool = True
) -> Callable[[HandlerFunc], HandlerFunc]:
    """Register a handler for the given event types (``"*"`` = every event)."""
    if not event_types:
        raise ValueError("outbox_handler needs at least one event type")

    def register(func: HandlerFunc) -> HandlerFunc:
        handler_name = name or f"{func.__module__}.{func.__qualname__}"
        if len(handler_name) > 200:
            raise ValueError(f"outbox handler name {handler_name!r} is longer than 200 characters")
        existing = _REGISTRY.get(handler_name)
        if existing is not None and existing.func is not func:
            raise ValueError(f"outbox handler {handler_name!r} is registered twice")
        _REGISTRY[handler_name] = RegisteredHandler(
            name=handler_name,
            event_types=frozenset(event_types),
            func=func,
            external=external,
            ledger=ledger,
        )
        return func

    return register


def handlers_for(event_type: str) -> list[RegisteredHandler]:
    return [h for h in _REGISTRY.values() if h.handles(event_type)]


def all_handlers() -> list[RegisteredHandler]:
    return list(_REGISTRY.values())


def unregister(name: str) -> None:
    """For tests that register temporary handlers."""
    _REGISTRY.pop(name, None)
