"""Helpers of the outbox tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from outbox.models import OutboxEvent
from outbox.tests.effect_handlers import EFFECT_EVENT


class FixedRandom:
    """Injected jitter source: the backoff becomes exact."""

    def __init__(self, value: float = 0.25) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def bulk_events(
    count: int,
    *,
    aggregates: int,
    event_type: str = EFFECT_EVENT,
    start: datetime | None = None,
    **fields: Any,
) -> list[OutboxEvent]:
    """``count`` due events spread round-robin over ``aggregates`` aggregates, created in
    index order (1 µs apart)."""
    start = start or timezone.now() - timedelta(seconds=1)
    events = [
        OutboxEvent(
            event_type=event_type,
            aggregate_type="Test",
            aggregate_id=f"agg-{i % aggregates}",
            payload={"n": i},
            created_at=start + timedelta(microseconds=i),
            next_attempt_at=start,
            **fields,
        )
        for i in range(count)
    ]
    return OutboxEvent.objects.bulk_create(events, batch_size=1000)


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll (bounded) for something another process does; the only place tests wait."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def subprocess_env() -> dict[str, str]:
    """Environment for a subprocess that must use the pytest test database."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    url = f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return {**os.environ, "DJANGO_ENV": "test", "DATABASE_URL": url}
