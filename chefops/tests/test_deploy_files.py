"""The deployment files (issue 16): one Dockerfile image, three Railway services configured in
code, the Procfile saying the same, a lean read-only image. Static checks of the files; CI also
validates the Railway files against deploy/schemas/railway.schema.json and lints the
Dockerfile (bin/ci.sh). The image itself is not built by the tests (no Docker daemon here)."""

from __future__ import annotations

import fnmatch
import json
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from chefops.ops.storage_config import is_local_config, storage_config
from chefops.schedule import MANAGED_PREFIX, SCHEDULE

ROOT = Path(__file__).resolve().parents[2]
RAILWAY = ROOT / "deploy" / "railway"
BIN = ROOT / ".venv" / "bin"


def railway(service: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RAILWAY / f"{service}.json").read_text(encoding="utf-8"))
    return data


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_three_services_from_one_dockerfile_image() -> None:
    assert sorted(p.stem for p in RAILWAY.glob("*.json")) == ["beat", "web", "worker"]
    for service in ("web", "worker", "beat"):
        build = railway(service)["build"]
        assert build == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}, service


def test_the_web_service_migrates_before_it_serves_and_is_health_checked() -> None:
    deploy = railway("web")["deploy"]
    assert deploy["preDeployCommand"] == ["python manage.py predeploy"]
    assert deploy["healthcheckPath"] == "/api/health"
    assert 30 <= deploy["healthcheckTimeout"] <= 300
    for service in ("worker", "beat"):  # only the web service runs the release step
        assert "preDeployCommand" not in railway(service)["deploy"], service


def test_exactly_one_beat_and_no_overlap_between_two_of_them() -> None:
    deploy = railway("beat")["deploy"]
    assert deploy["numReplicas"] == 1
    assert deploy["overlapSeconds"] == 0  # the old beat stops as the new one starts


def test_the_procfile_says_what_the_railway_files_say() -> None:
    processes = procfile()
    assert set(processes) == {"release", "web", "worker", "beat"}
    for service in ("web", "worker", "beat"):
        assert processes[service] == railway(service)["deploy"]["startCommand"], service
    assert [processes["release"]] == railway("web")["deploy"]["preDeployCommand"]


def test_the_railway_variables_set_the_proxy_count() -> None:
    text = (RAILWAY / "variables.env").read_text(encoding="utf-8")
    pairs = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert pairs["NUM_PROXIES"] == "1"
    assert pairs["DJANGO_ENV"] == "production"
    # production refuses archives and backups on the container's disk: both go to the bucket
    for variable in ("ARCHIVE_STORAGE_URL", "BACKUP_STORAGE_URL"):
        config = storage_config(pairs[variable], variable=variable, dir_setting="UNUSED_DIR")
        assert not is_local_config(config), variable
    assert "ALLOW_LOCAL_ARCHIVES" not in pairs


@pytest.mark.django_db(transaction=True)
def test_predeploy_migrates_and_syncs_the_beat_schedule() -> None:
    PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX).delete()
    out = StringIO()
    call_command("predeploy", verbosity=0, stdout=out)
    assert "predeploy: migrations applied, beat schedule in sync" in out.getvalue()
    managed = set(
        PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX).values_list("name", flat=True)
    )
    assert managed == {MANAGED_PREFIX + job.name for job in SCHEDULE}
    # nothing left to migrate
    call_command("migrate", check=True, plan=True, verbosity=0, stdout=StringIO())


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for these patterns: a path is left out when it or one of its
    parent directories matches a pattern (the last matching pattern wins; `!` re-includes)."""
    parts = path.split("/")
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:i]), pattern):
                result = not negate
                break
    return result


def test_dockerignore_leaves_tests_tools_and_state_out_and_the_code_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    left_out = [
        ".git/HEAD",
        ".venv/bin/python",
        ".github/workflows/test.yml",
        "chefops/tests/test_health.py",
        "companies/tests/__init__.py",
        "servicedays/tests/test_api.py",
        "chefops/testing/gunicorn.py",
        "conftest.py",
        "bench/login_bench.py",
        "docs/benchmarks.md",
        "chefops/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".coverage",
        "db.sqlite3",
        ".run/run.lock",
        "backups/x.dump",
        "archive/companies/x.jsonl.gz",
        "staticfiles/admin/x.css",
        ".env",
        "requirements-dev.txt",
        "deploy/railway/web.json",
    ]
    kept = [
        "manage.py",
        "gunicorn.conf.py",
        "requirements.txt",
        "chefops/settings.py",
        "chefops/wsgi.py",
        "chefops/management/commands/predeploy.py",
        "companies/models.py",
        "contracts/migrations/0001_initial.py",
        "templates/admin/index.html",
        "deploy/prometheus/alerts.yml",
    ]
    assert [p for p in left_out if not _ignored(p, patterns)] == []
    assert [p for p in kept if _ignored(p, patterns)] == []
    # every tests package of the project is covered, not only the ones listed above
    for tests_dir in ROOT.glob("*/tests"):
        assert _ignored(f"{tests_dir.relative_to(ROOT)}/__init__.py", patterns), tests_dir


def test_the_image_code_is_read_only_for_the_app_user() -> None:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    runtime = lines[next(i for i, line in enumerate(lines) if " AS runtime" in line) :]
    copies = [line for line in runtime if line.startswith("COPY ")]
    assert copies and all("--chown" not in line for line in copies), copies  # root-owned
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users == ["10001:10001"]  # not root, and only after the build steps
    text = "\n".join(runtime)
    # the only writable paths: the state directories, created for the app user
    assert "install -d -o chefops -g chefops -m 0750 /app/.run /app/archive /app/backups" in text
    assert "chown -R" not in text


def test_the_image_installs_the_postgresql_16_client_from_pgdg() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" in text
    assert "postgresql-client-16" in text
    assert "postgresql-client " not in text and "postgresql-client\n" not in text
    assert 'ARG CHEFOPS_VERSION=""' in text and "CHEFOPS_VERSION=${CHEFOPS_VERSION}" in text


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_railway_files_match_their_schema_and_a_misspelt_key_fails(tmp_path: Path) -> None:
    schema = ROOT / "deploy" / "schemas" / "railway.schema.json"

    def validate(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "check-jsonschema"), "--schemafile", str(schema), *map(str, files)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    ok = validate(*sorted(RAILWAY.glob("*.json")))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = railway("web")
    bad["deploy"]["healthCheckPath"] = bad["deploy"].pop("healthcheckPath")
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    refused = validate(tmp_path / "bad.json")
    assert refused.returncode == 1
    assert "'healthCheckPath' was unexpected" in refused.stdout
