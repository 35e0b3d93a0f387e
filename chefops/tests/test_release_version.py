"""Health knows its release (issue 16): /api/health reports `version`, and
``postdeploy_check --expect-version`` waits for that release and fails against another one.

The command is run against a real gunicorn (its own migrated SQLite database in a temporary
directory) started with the release in its environment, as the image and Railway give it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from chefops.testing.gunicorn import ROOT, http_get, running_gunicorn

TOKEN = "metrics-token-for-release-tests"
RELEASE = "3f9c2d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"


@pytest.mark.django_db
def test_health_reports_the_configured_release(settings: Any) -> None:
    settings.RELEASE_VERSION = RELEASE
    body = APIClient().get("/api/health").json()
    assert body["version"] == RELEASE
    # the frontend contract is kept: the original fields are all still there
    assert {"status", "timestamp", "database", "uptime"} <= set(body)


def _settings_probe(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CHEFOPS_VERSION", "RAILWAY_GIT_COMMIT_SHA", "NUM_PROXIES", "NO_REVERSE_PROXY"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "chefops.settings", **env_overrides})
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.RELEASE_VERSION)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_release_version_comes_from_the_image_then_the_platform_then_dev() -> None:
    both = {"CHEFOPS_VERSION": "abc123", "RAILWAY_GIT_COMMIT_SHA": "def456"}
    assert _settings_probe(both).stdout.split() == ["abc123"]
    # the Dockerfile's build argument defaults to empty: the platform's commit shows through
    platform = {"CHEFOPS_VERSION": "", "RAILWAY_GIT_COMMIT_SHA": "def456"}
    assert _settings_probe(platform).stdout.split() == ["def456"]
    assert _settings_probe({}).stdout.split() == ["dev"]


@pytest.fixture(scope="module")
def served_release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("release")
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "DJANGO_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "RUN_DIR": str(tmp / "run"),
        "WEB_CONCURRENCY": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "METRICS_TOKEN": TOKEN,
        "CHEFOPS_VERSION": RELEASE,
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    (tmp / "metrics").mkdir()
    with running_gunicorn(env, tmp) as gunicorn:
        yield gunicorn.base


@pytest.mark.slow
def test_a_served_health_reports_its_release(served_release: str) -> None:
    status, body = http_get(f"{served_release}/api/health")
    assert status == 200
    assert json.loads(body)["version"] == RELEASE


@pytest.mark.slow
def test_postdeploy_check_passes_when_the_expected_release_serves(
    served_release: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chefops.management.commands import postdeploy_check

    settings.METRICS_TOKEN = TOKEN
    # p95 depends on this machine's load; the latency rule has its own tests.
    monkeypatch.setattr(postdeploy_check, "POSTDEPLOY_P95_SECONDS_MAX", 3600.0)
    out = StringIO()
    call_command(
        "postdeploy_check",
        "--url",
        served_release,
        "--expect-version",
        RELEASE,
        "--timeout",
        "120",
        stdout=out,
    )
    line = out.getvalue().strip()
    assert line.startswith(f"postdeploy_check OK: health ok (version {RELEASE}) after "), line


@pytest.mark.slow
def test_postdeploy_check_fails_while_another_release_serves(
    served_release: str, settings: Any
) -> None:
    """The old release still answering ok is not the new one being live: the check waits
    until its timeout, then fails naming both versions."""
    settings.METRICS_TOKEN = TOKEN
    out = StringIO()
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "postdeploy_check",
            "--url",
            served_release,
            "--expect-version",
            "0000000000000000000000000000000000000000",
            "--timeout",
            "1",
            "--interval",
            "0.2",
            stdout=out,
        )
    assert exit_info.value.code == 1
    assert time.monotonic() - started < 60  # gave up after its timeout
    line = out.getvalue().strip()
    assert line.startswith(
        f"postdeploy_check FAILED: {served_release}/api/health reports version {RELEASE}, "
        "not the expected 0000000000000000000000000000000000000000, after 1s"
    ), line


def test_postdeploy_check_refuses_an_empty_expected_version() -> None:
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "postdeploy_check", "--url", "http://127.0.0.1:1", "--expect-version", " ", stdout=out
        )
    assert exit_info.value.code == 1
    assert "--expect-version needs a value" in out.getvalue()


def test_the_health_schema_documents_version(tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(schema_file))
    schema = json.loads(schema_file.read_text())
    health = schema["components"]["schemas"]["Health"]
    assert "version" in health["properties"]
    assert "commit SHA" in health["properties"]["version"]["description"]
