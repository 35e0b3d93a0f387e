"""Shared test configuration: database capability markers."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL (set DATABASE_URL=postgres://...); running on SQLite"
    )
    skip_redis = pytest.mark.skip(reason="needs a real Redis broker (set REDIS_URL=redis://...)")
    for item in items:
        if "postgres" in item.keywords and not settings.IS_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def cast(db: None) -> Any:
    """Two caterers and two clients, each with an ADMIN, a MANAGER and an EMPLOYEE user."""
    from chefops.testing.cast import make_cast

    return make_cast()
