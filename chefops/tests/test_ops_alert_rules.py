"""deploy/prometheus/alerts.yml: valid, unit-tested with promtool, in step with chefops/ops.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chefops import ops
from chefops.jobs import JOB_PERIODS

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (bin/ensure-promtool.sh installs it from Debian's "
    "prometheus package)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_alert_rules_are_valid() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _threshold(expr: str) -> float:
    match = re.search(r"[<>]\s*([0-9.]+)\s*$", expr.strip())
    assert match, expr
    return float(match.group(1))


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {str(rule["alert"]) for rule in _rules()}
    assert names == firing == quiet


def test_thresholds_match_the_ones_check_alerts_uses() -> None:
    by_name: dict[str, list[str]] = {}
    for rule in _rules():
        by_name.setdefault(str(rule["alert"]), []).append(str(rule["expr"]))
    assert _threshold(by_name["ChefOpsHigh5xxRate"][0]) == ops.HTTP_5XX_RATIO_MAX
    assert _threshold(by_name["ChefOpsHighLatencyP95"][0]) == ops.HTTP_P95_SECONDS_MAX
    assert _threshold(by_name["ChefOpsDatabaseSizeNearQuota"][0]) == ops.DB_SIZE_QUOTA_RATIO_MAX
    assert _threshold(by_name["ChefOpsDiskSpaceLow"][0]) == ops.DISK_FREE_RATIO_MIN
    assert (
        _threshold(by_name["ChefOpsOutboxBacklogStuck"][0]) == ops.OUTBOX_OLDEST_PENDING_SECONDS_MAX
    )
    assert _threshold(by_name["ChefOpsOutboxDeadEvents"][0]) == ops.OUTBOX_DEAD_MAX
    stale = {
        str(rule["labels"]["scheduled_job"]): _threshold(str(rule["expr"]))  # type: ignore[index]
        for rule in _rules()
        if rule["alert"] == "ChefOpsScheduledJobStale"
    }
    assert stale == {job: 2 * period for job, period in JOB_PERIODS.items()}
