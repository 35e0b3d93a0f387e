"""Boot the settings in a fresh interpreter: what staging/production accept or refuse.

``django_setup(overrides, code)`` runs ``code`` after ``django.setup()`` in a new Python whose
environment is this one's without any variable a probe controls (the production requirements
and their opt-outs, plus ``without``), then ``overrides``. The settings read the environment
once, at import, so a refusal (``ImproperlyConfigured``) can only be seen this way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What staging/production require; inherited values of these never leak into a probe.
REQUIRED_IN_PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "k" * 20 + "Zq8!" * 10,
    # Nothing listens on port 1: the settings need URLs, never a connection.
    "DATABASE_URL": "postgres://x@127.0.0.1:1/x",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "ALLOWED_HOSTS": "chefops.example.com",
    "METRICS_TOKEN": "scrape-token-for-tests",
    # Behind the platform's router (README "Deploying"); 0 is refused without NO_REVERSE_PROXY.
    "NUM_PROXIES": "1",
    # Archives and backups on this machine's disk (test_object_storage.py tests the refusal).
    "ALLOW_LOCAL_ARCHIVES": "true",
}
# The opt-outs and choices a probe always states itself when it needs them.
CONTROLLED = {
    *REQUIRED_IN_PRODUCTION,
    "METRICS_PUBLIC",
    "NO_REVERSE_PROXY",
    "ARCHIVE_STORAGE_URL",
    "BACKUP_STORAGE_URL",
    "CHEFOPS_VERSION",
    "RAILWAY_GIT_COMMIT_SHA",
}


def django_setup(
    overrides: dict[str, str], code: str = "print('started')", *, without: Iterable[str] = ()
) -> subprocess.CompletedProcess[str]:
    """The finished interpreter (exit status, stdout, stderr) of ``code`` after setup."""
    dropped = CONTROLLED | set(without)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update({"DJANGO_SETTINGS_MODULE": "chefops.settings", **overrides})
    return subprocess.run(  # noqa: S603 - this interpreter, the test's own code
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
