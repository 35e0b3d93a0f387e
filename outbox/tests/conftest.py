"""Fixtures of the outbox tests: temporary handlers, the effect table, a fixed jitter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from outbox.registry import HandlerFunc, outbox_handler, unregister
from outbox.tests.effect_handlers import (
    create_effect_table,
    drop_effect_table,
    register_effect_handlers,
    unregister_effect_handlers,
)
from outbox.tests.support import FixedRandom


@pytest.fixture
def fixed_rng() -> FixedRandom:
    return FixedRandom(0.25)


Register = Callable[..., HandlerFunc]


@pytest.fixture
def handlers() -> Iterator[Register]:
    """``handlers(func, "type", name=..., external=..., ledger=...)`` registers for this test."""
    names: list[str] = []

    def register(func: HandlerFunc, *event_types: str, **options: Any) -> HandlerFunc:
        name = options.setdefault("name", f"test.{func.__name__}")
        names.append(name)
        return outbox_handler(*event_types, **options)(func)

    yield register
    for name in names:
        unregister(name)


@pytest.fixture
def effects() -> Iterator[None]:
    """The scratch effect table and the two effect handlers of ``test.effect``.

    Needs database access from the test's django_db marker (either kind)."""
    create_effect_table()
    register_effect_handlers()
    try:
        yield
    finally:
        unregister_effect_handlers()
        drop_effect_table()
