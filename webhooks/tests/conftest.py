"""Fixtures of the webhook tests: no API request may answer 5xx, whatever a test asserts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chefops.testing.http import no_server_errors


@pytest.fixture(autouse=True)
def _no_server_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    with no_server_errors(monkeypatch) as seen:
        yield seen
