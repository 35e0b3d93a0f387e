"""Fixtures of the contract tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chefops.testing.cast import Cast
from chefops.testing.factories import ContractFactory
from contracts.models import Contract


@pytest.fixture
def contract(cast: Cast) -> Contract:
    """An ACTIVE contract between cast.catering and cast.client, weekdays [1, 3, 5]."""
    return ContractFactory.create(
        catering_company=cast.catering.company, client_company=cast.client.company
    )


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No response of this suite may be a 500: the API logs every unhandled error."""
    yield
    crashes = [
        record
        for record in caplog.records
        if record.name in ("chefops.api", "django.request") and record.levelno >= logging.ERROR
    ]
    assert not crashes, [record.getMessage() for record in crashes]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The cast hashes twelve passwords per test; these tests log in with tokens, not passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
