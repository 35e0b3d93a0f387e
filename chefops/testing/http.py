"""HTTP helpers of the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from rest_framework.test import APIClient


@contextmanager
def no_server_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every request made through APIClient meanwhile must answer below 500, whatever the
    test itself asserts; yields the (request, status) pairs seen."""
    seen: list[tuple[str, int]] = []
    original = APIClient.request

    def request(self: APIClient, **kwargs: Any) -> Any:
        response = original(self, **kwargs)
        seen.append(
            (f"{kwargs.get('REQUEST_METHOD')} {kwargs.get('PATH_INFO')}", response.status_code)
        )
        return response

    monkeypatch.setattr(APIClient, "request", request)
    yield seen
    errors = [entry for entry in seen if entry[1] >= 500]
    assert not errors, f"server errors: {errors}"
