"""Fixtures of the accounts tests: a cheap password hasher, JSON helpers, the 500 guard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

FAST_HASHERS = [
    "companies.tests.hashers.FastArgon2PasswordHasher",
    "companies.hashers.SizedArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS


@pytest.fixture(autouse=True)
def _no_server_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every request made through APIClient in this suite must answer below 500."""
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
