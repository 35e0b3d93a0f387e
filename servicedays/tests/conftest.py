"""Fixtures of the service-day tests: a contract between the cast's catering and client."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.models import Contract
from servicedays.tests.helpers import make_contract


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """No test here logs in with a password; the cast's twelve Argon2 hashes per test were
    most of this suite's run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def contract(cast: Any) -> Contract:
    return make_contract(cast)
