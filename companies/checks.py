"""System checks of the accounts app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register
from django.utils.module_loading import import_string

SIZED = "companies.hashers.SizedArgon2PasswordHasher"


@register("security")
def check_password_hashers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Django picks the hasher that verifies a hash by its algorithm name, and the *last*
    hasher listed with a name wins. Another ``argon2`` hasher listed after the sized one
    would verify every password itself, outside the bounded hashing pool."""
    hashers = list(settings.PASSWORD_HASHERS)
    if not hashers or hashers[0] != SIZED:
        return [
            Warning(
                f"PASSWORD_HASHERS should start with {SIZED}.",
                hint="Argon2 with ~19 MiB per hash keeps logins inside a 512 MB container.",
                id="companies.W001",
            )
        ]
    shadowing = [
        path
        for path in hashers[1:]
        if getattr(import_string(path), "algorithm", None) == "argon2"
        and not issubclass(import_string(path), import_string(SIZED))
    ]
    if shadowing:
        return [
            Warning(
                f"{', '.join(shadowing)} shadows {SIZED}: Django verifies argon2 hashes with "
                "the last hasher of that name.",
                hint=f"Remove it from PASSWORD_HASHERS; {SIZED} verifies (and upgrades) "
                "hashes made with any Argon2 parameters.",
                id="companies.W002",
            )
        ]
    return []
