"""deploy/prometheus/alerts.yml: valid, unit-tested with promtool, and the one source of the
thresholds chefops/ops/alerts.py judges with."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chefops.ops import alerts
from chefops.ops.jobs import JOB_PERIODS

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


def test_check_alerts_reads_its_thresholds_from_the_rules_file() -> None:
    assert alerts.RULES_FILE == RULES
    by_name = {str(rule["alert"]): str(rule["expr"]) for rule in _rules()}
    limits = alerts.thresholds()
    assert _threshold(by_name["ChefOpsHigh5xxRate"]) == limits.http_5xx_ratio_max
    assert _threshold(by_name["ChefOpsHighLatencyP95"]) == limits.http_p95_seconds_max
    assert _threshold(by_name["ChefOpsDatabaseSizeNearQuota"]) == limits.db_size_quota_ratio_max
    assert _threshold(by_name["ChefOpsDiskSpaceLow"]) == limits.disk_free_ratio_min
    assert (
        _threshold(by_name["ChefOpsOutboxBacklogStuck"]) == limits.outbox_oldest_pending_seconds_max
    )
    assert _threshold(by_name["ChefOpsOutboxDeadEvents"]) == limits.outbox_dead_max


def test_a_changed_rule_changes_what_check_alerts_judges(tmp_path: Path) -> None:
    """Editing a number in alerts.yml is all it takes: no second copy to forget."""
    text = RULES.read_text()
    assert text.count("> 0.01\n") == 1
    edited = tmp_path / "alerts.yml"
    edited.write_text(text.replace("> 0.01\n", "> 0.05\n"))
    assert alerts.load_thresholds(edited).http_5xx_ratio_max == 0.05
    assert (
        alerts.load_thresholds(edited).http_p95_seconds_max
        == alerts.thresholds().http_p95_seconds_max
    )


def test_a_rule_without_a_threshold_is_refused(tmp_path: Path) -> None:
    edited = tmp_path / "alerts.yml"
    edited.write_text(RULES.read_text().replace("alert: ChefOpsDiskSpaceLow", "alert: Renamed"))
    with pytest.raises(alerts.AlertRulesError, match="no alert rule ChefOpsDiskSpaceLow"):
        alerts.load_thresholds(edited)
    flipped = tmp_path / "flipped.yml"
    flipped.write_text(
        RULES.read_text().replace(
            "chefops_disk_total_bytes < 0.2", "chefops_disk_total_bytes > 0.2"
        )
    )
    with pytest.raises(alerts.AlertRulesError, match="ChefOpsDiskSpaceLow compares with >"):
        alerts.load_thresholds(flipped)


def test_the_judged_alerts_use_the_rules_file_thresholds(tmp_path: Path, db: None) -> None:
    edited = tmp_path / "alerts.yml"
    edited.write_text(
        RULES.read_text()
        .replace("> 0.01\n", "> 0.02\n")
        .replace("chefops_disk_total_bytes < 0.2", "chefops_disk_total_bytes < 0.3")
        .replace("max(chefops_outbox_dead_events) > 0", "max(chefops_outbox_dead_events) > 3")
    )
    alerts.thresholds.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(alerts, "RULES_FILE", edited)
            checks = {c.name: c for c in alerts.evaluate_alerts(alerts.HttpStats(100, 2, 0.1))}
    finally:
        alerts.thresholds.cache_clear()
    assert (checks["http_5xx_ratio"].firing, checks["http_5xx_ratio"].threshold) == (
        False,
        "> 2.00%",
    )
    assert checks["disk_free"].threshold == "< 30.00%"
    assert checks["outbox_dead_events"].threshold == "> 3"
    assert checks["http_p95_latency"].threshold == "> 1s"


def test_stale_job_rules_are_twice_the_job_periods() -> None:
    stale = {
        str(rule["labels"]["scheduled_job"]): _threshold(str(rule["expr"]))  # type: ignore[index]
        for rule in _rules()
        if rule["alert"] == "ChefOpsScheduledJobStale"
    }
    assert stale == {job: 2 * period for job, period in JOB_PERIODS.items()}
