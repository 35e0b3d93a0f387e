"""Fixtures of the accounts tests: a cheap password hasher, JSON helpers, the 500 guard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chefops.testing.http import no_server_errors

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
    with no_server_errors(monkeypatch) as seen:
        yield seen
