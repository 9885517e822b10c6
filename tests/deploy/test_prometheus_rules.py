"""deploy/prometheus and deploy/alertmanager: the rules pass `promtool check rules` and their unit tests, the
example configurations pass `promtool check config` and `amtool check-config`, and every metric a rule reads
is one Hypercare exports (checked against a real /metrics scrape)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.deploy.promql import ROOT, RULE_TESTS, RULES, metric_names, missing, rule_exprs, scrape
from tests.servers import tool


def run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False, cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_rules_pass_promtool_check_rules() -> None:
    out = run(tool("promtool", "prometheus"), "check", "rules", str(RULES))
    assert "SUCCESS: 18 rules found" in out


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    out = run(tool("promtool", "prometheus"), "test", "rules", str(RULE_TESTS))
    assert "SUCCESS" in out


def test_a_broken_rule_unit_test_fails(tmp_path: Path) -> None:
    """The unit tests can fail: the same tests against a rule that lost its `for:` do."""
    (tmp_path / "tests").mkdir()
    rules = RULES.read_text(encoding="utf-8").replace(
        "expr: hypercare_db_up == 0\n        for: 2m", "expr: hypercare_db_up == 0"
    )
    (tmp_path / "hypercare.rules.yml").write_text(rules, encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    done = subprocess.run(
        [tool("promtool", "prometheus"), "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "HypercareSourceDown" in done.stdout + done.stderr


def test_the_example_configurations_are_valid(tmp_path: Path) -> None:
    run(tool("promtool", "prometheus"), "check", "config", "prometheus.yml", cwd=ROOT / "deploy/prometheus")
    token = tmp_path / "hypercare.token"
    token.write_text("hc_example\n", encoding="utf-8")
    config = (ROOT / "deploy/alertmanager/alertmanager.yml").read_text(encoding="utf-8")
    assert "credentials_file: /etc/alertmanager/hypercare.token" in config
    (tmp_path / "alertmanager.yml").write_text(
        config.replace("/etc/alertmanager/hypercare.token", str(token)), encoding="utf-8"
    )
    run(tool("amtool", "prometheus-alertmanager"), "check-config", str(tmp_path / "alertmanager.yml"))


def test_every_metric_the_rules_read_is_exported(store_url: str, tmp_path: Path) -> None:
    text = scrape(store_url, tmp_path)
    assert missing(rule_exprs(), text) == {}
    assert metric_names("sum(rate(hypercare_no_such_metric_total[5m]))") == {"hypercare_no_such_metric_total"}
    assert missing(["hypercare_no_such_metric > 0"], text) == {
        "hypercare_no_such_metric > 0": {"hypercare_no_such_metric"}
    }
