"""Test support: handlers whose effect is a row in a scratch table, written in the same
transaction as their ledger row, so "exactly once" can be counted in the database.

Not registered on import: the tests register them through a fixture (and the subprocess
runner through ``register_effect_handlers``), so other tests' events never reach them.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection

from outbox.models import OutboxEvent
from outbox.registry import outbox_handler, unregister

EFFECT_TABLE = "outbox_test_effect"
EFFECT_EVENT = "test.effect"
HANDLER_A = "test.effect_a"
HANDLER_B = "test.effect_b"


def create_effect_table() -> None:
    if connection.vendor == "postgresql":
        key = "id bigserial PRIMARY KEY"
    else:
        key = "id integer PRIMARY KEY AUTOINCREMENT"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {EFFECT_TABLE} ({key}, event_id varchar(36) NOT NULL, "
            "handler varchar(200) NOT NULL, aggregate_id varchar(100) NOT NULL)"
        )
        cursor.execute(f"DELETE FROM {EFFECT_TABLE}")


def drop_effect_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {EFFECT_TABLE}")


def record_effect(event: OutboxEvent, handler: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EFFECT_TABLE} (event_id, handler, aggregate_id) VALUES (%s, %s, %s)",
            [str(event.id), handler, event.aggregate_id],
        )


def effect_rows() -> list[tuple[Any, ...]]:
    """(id, event_id, handler, aggregate_id) in insertion (commit-id) order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, event_id, handler, aggregate_id FROM {EFFECT_TABLE} ORDER BY id"
        )
        return list(cursor.fetchall())


def register_effect_handlers(*, sleep_seconds: float = 0.0) -> None:
    def effect_a(event: OutboxEvent) -> None:
        if sleep_seconds:
            time.sleep(sleep_seconds)  # keeps a dispatcher mid-batch for the fault test
        record_effect(event, HANDLER_A)

    def effect_b(event: OutboxEvent) -> None:
        record_effect(event, HANDLER_B)

    outbox_handler(EFFECT_EVENT, name=HANDLER_A)(effect_a)
    outbox_handler(EFFECT_EVENT, name=HANDLER_B)(effect_b)


def unregister_effect_handlers() -> None:
    unregister(HANDLER_A)
    unregister(HANDLER_B)
