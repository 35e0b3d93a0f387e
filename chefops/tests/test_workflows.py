"""The pipeline's graph (issue 16), read from .github/workflows: the gate is `make ci` (what
.ci/run runs) on PostgreSQL 16 and Redis; the image is built only after the gate passed on that
commit; staging deploys only a successful build of dev; production deploys by hand, from main
only, a commit whose build succeeded, behind the `production` environment's approval; both
deploys use the Railway CLI and wait for /api/health to report the deployed commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean true.
    on = raw.pop(True, raw.get("on"))
    return {**{str(k): v for k, v in raw.items()}, "on": on}


def triggers(data: dict[str, Any]) -> dict[str, Any]:
    on = data["on"]
    return {on: None} if isinstance(on, str) else dict(on)


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def test_the_workflows_are_these_four() -> None:
    assert sorted(p.stem for p in WORKFLOWS.glob("*.y*ml")) == [
        "build",
        "deploy-prod",
        "deploy-staging",
        "test",
    ]


def test_the_gate_is_make_ci_on_postgresql_16_and_redis() -> None:
    data = workflow("test")
    on = triggers(data)
    assert "workflow_call" in on  # build.yml runs it before the image
    assert on["pull_request"]["branches"] == ["main", "dev"]
    (job,) = data["jobs"].values()
    assert job["services"]["postgres"]["image"] == "postgres:16"
    assert job["services"]["redis"]["image"].startswith("redis:")
    runs = [step.get("run", "").strip() for step in job["steps"]]
    assert "make ci" in runs  # the same gate as .ci/run
    assert "make ci" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_image_is_built_only_after_the_gate_passed_on_that_commit() -> None:
    data = workflow("build")
    assert triggers(data) == {"push": {"branches": ["main", "dev"]}}
    jobs = data["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    image = jobs["image"]
    assert needs(image) == ["test"]
    assert set(jobs) == {"test", "image"}
    build = next(
        s for s in image["steps"] if str(s.get("uses", "")).startswith("docker/build-push")
    )
    assert build["with"]["push"] is True
    tags = [line.strip() for line in build["with"]["tags"].splitlines() if line.strip()]
    name = "${{ steps.image.outputs.name }}"
    assert tags == [name + ":sha-${{ github.sha }}", name + ":${{ github.ref_name }}"]
    assert build["with"]["build-args"].strip() == "CHEFOPS_VERSION=${{ github.sha }}"
    # the image name is the repository lowercased (GHCR refuses capitals)
    assert "ghcr.io/${REPOSITORY,,}" in steps_text(image)


def test_staging_deploys_only_a_successful_build_of_dev() -> None:
    data = workflow("deploy-staging")
    assert triggers(data) == {
        "workflow_run": {"workflows": ["build"], "types": ["completed"], "branches": ["dev"]}
    }
    (job,) = data["jobs"].values()
    condition = " ".join(job["if"].split())
    assert "github.event.workflow_run.conclusion == 'success'" in condition
    assert "github.event.workflow_run.head_branch == 'dev'" in condition
    assert job["environment"] == "staging"
    checkout = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout")
    )
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}"
    deploy = job["steps"][-1]
    assert deploy["run"] == 'deploy/railway/deploy.sh staging "$SHA" "$BASE_URL"'
    assert deploy["env"]["SHA"] == "${{ github.event.workflow_run.head_sha }}"
    assert deploy["env"]["RAILWAY_TOKEN"] == "${{ secrets.RAILWAY_TOKEN }}"


def test_production_deploys_by_hand_from_main_a_built_commit_after_approval() -> None:
    data = workflow("deploy-prod")
    assert set(triggers(data)) == {"workflow_dispatch"}
    jobs = data["jobs"]
    verify, deploy = jobs["verify"], jobs["deploy"]
    assert needs(deploy) == ["verify"]
    assert deploy["environment"] == "production"  # required reviewers live on it
    assert deploy["if"] == "github.ref == 'refs/heads/main'"
    refuse = verify["steps"][0]
    assert refuse["if"] == "github.ref != 'refs/heads/main'" and "exit 1" in refuse["run"]
    checks = steps_text(verify)
    assert "git merge-base --is-ancestor" in checks and "origin/main" in checks
    assert "actions/workflows/build.yml/runs?head_sha=${sha}&status=success" in checks
    step = deploy["steps"][-1]
    assert step["run"] == 'deploy/railway/deploy.sh production "$SHA" "$BASE_URL"'
    assert step["env"]["SHA"] == "${{ needs.verify.outputs.sha }}"


def test_deploys_use_the_pinned_railway_cli_and_no_deploy_hook() -> None:
    for name in ("deploy-staging", "deploy-prod"):
        text = (WORKFLOWS / f"{name}.yml").read_text(encoding="utf-8")
        assert "npm install -g @railway/cli@" in text
        pinned = text.split("@railway/cli@", 1)[1].split()[0]
        assert pinned.replace(".", "").isdigit(), pinned  # an exact version
        assert "DEPLOY_HOOK" not in text
    script = (ROOT / "deploy" / "railway" / "deploy.sh").read_text(encoding="utf-8")
    assert 'railway up --ci --service "$service" --environment "$environment"' in script
    assert 'postdeploy_check --url "$base" --expect-version "$sha"' in script
