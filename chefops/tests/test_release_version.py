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

from chefops.testing.gunicorn import ROOT, http_get, running_site
from chefops.testing.settings_probe import django_setup

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
    code = "from django.conf import settings as s; print(s.RELEASE_VERSION)"
    return django_setup(env_overrides, code, without={"NUM_PROXIES"})


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
    overrides = {
        "WEB_CONCURRENCY": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "METRICS_TOKEN": TOKEN,
        "CHEFOPS_VERSION": RELEASE,
    }
    with running_site(tmp, overrides) as gunicorn:
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


# --- deploy/railway/deploy.sh, the deploy workflows' script --------------------------------
# Railway cannot be reached from the tests: a stand-in `railway` on PATH records its arguments
# (and fails when told to); everything else is real, the health wait and post-deploy check
# against the served release included. Only probe routes reach that server, so the check's
# p95 rule has no requests to judge (n/a) whatever the machine's load.
_RAILWAY_STANDIN = """#!/bin/sh
echo "$*" >> "$RAILWAY_CALLS"
case "$*" in *"$RAILWAY_FAIL_ON"*) [ -n "$RAILWAY_FAIL_ON" ] && exit 1 ;; esac
exit 0
"""


def _deploy(base: str, sha: str, tmp_path: Path, **extra: str) -> tuple[int, str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    railway = bin_dir / "railway"
    railway.write_text(_RAILWAY_STANDIN, encoding="utf-8")
    railway.chmod(0o755)
    calls = tmp_path / "calls.log"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "DJANGO_ENV": "development",
        "METRICS_TOKEN": TOKEN,
        "RAILWAY_TOKEN": "project-token-for-tests",
        "RAILWAY_CALLS": str(calls),
        "RAILWAY_FAIL_ON": "",
        "POSTDEPLOY_TIMEOUT": "120",
        **extra,
    }
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "railway" / "deploy.sh"), "staging", sha, base + "/"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    made = calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []
    return result.returncode, result.stdout + result.stderr, made


@pytest.mark.slow
def test_deploy_script_deploys_the_three_services_and_waits_for_the_release(
    served_release: str, tmp_path: Path
) -> None:
    code, output, calls = _deploy(served_release, RELEASE, tmp_path)
    assert code == 0, output
    assert calls == [
        *(
            f"variables --service {s} --environment staging --skip-deploys "
            f"--set CHEFOPS_VERSION={RELEASE}"
            for s in ("web", "worker", "beat")
        ),
        *(f"up --ci --service {s} --environment staging" for s in ("web", "worker", "beat")),
    ]
    assert f"postdeploy_check OK: health ok (version {RELEASE})" in output
    assert f"Deployed {RELEASE} to staging" in output


@pytest.mark.slow
def test_deploy_script_fails_with_the_release_to_roll_back_to(
    served_release: str, tmp_path: Path
) -> None:
    """The new release never shows up (the old one keeps answering): the deploy fails and
    names the release that served before it."""
    new = "1" * 40
    code, output, _ = _deploy(
        served_release,
        new,
        tmp_path,
        POSTDEPLOY_TIMEOUT="1",
        ROLLBACK_HINT="run deploy-prod with version set to that release",
    )
    assert code == 1, output
    assert f"reports version {RELEASE}, not the expected {new}" in output
    assert f"ROLL BACK to the release that served before: {RELEASE}" in output
    assert "run deploy-prod with version set to that release" in output


@pytest.mark.slow
def test_deploy_script_stops_at_a_failed_railway_up(served_release: str, tmp_path: Path) -> None:
    code, output, calls = _deploy(
        served_release, RELEASE, tmp_path, RAILWAY_FAIL_ON="up --ci --service worker"
    )
    assert code == 1, output
    assert f"Deploy of {RELEASE} to staging FAILED: railway up of worker" in output
    assert f"ROLL BACK to the release that served before: {RELEASE}" in output
    assert not any("--service beat" in call and call.startswith("up") for call in calls)


def test_deploy_script_refuses_a_malformed_commit(tmp_path: Path) -> None:
    code, output, calls = _deploy("http://127.0.0.1:1", "main; rm -rf /", tmp_path)
    assert code == 2 and "COMMIT_SHA must be a lowercase hex commit SHA" in output
    assert calls == []
