"""The alert rules and the dashboard: promtool checks the rules and runs their unit tests
(prometheus/alerts.test.yml), parses every dashboard query, and each metric they name is one the
services export."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

from tests.deploy.tools import DASHBOARD, RULES, SERVICE_MODULES, run, tool

PROMETHEUS_OWN = {"up"}  # written by Prometheus for each target it scrapes
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
METRIC = re.compile(r"\b(stopline_[a-z0-9_]+|process_[a-z0-9_]+|up)\b(?!\s*\()")


def _exported() -> set[str]:
    """Every sample name the services' processes expose on /metrics (prometheus_client's process
    collector included), labelled or not, touched or not."""
    for module in SERVICE_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def _labels() -> dict[str, set[str]]:
    """Each exported sample name's label names (prometheus_client keeps them on its metric objects)."""
    _exported()
    found: dict[str, set[str]] = {}
    for collector, names in REGISTRY._collector_to_names.items():  # no public way to list label names
        for name in names:
            found[name] = set(getattr(collector, "_labelnames", ()))
    return found


def _rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _dashboard_queries() -> list[str]:
    panels = json.loads(Path(DASHBOARD).read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def _names(queries: list[str]) -> set[str]:
    # Label matchers' values and names are not metrics: drop what is inside {...} and "...".
    return {m for q in queries for m in METRIC.findall(re.sub(r"\{[^}]*\}|\"[^\"]*\"", "", q))}


def test_promtool_checks_the_rules():
    out = run(tool("promtool"), "check", "rules", RULES)
    assert "SUCCESS: 19 rules found" in out


def test_the_rules_fire_when_they_should_and_not_before():
    run(tool("promtool"), "test", "rules", "alerts.test.yml", cwd=Path(__file__).parent / "prometheus")


def test_promtool_parses_every_dashboard_query(tmp_path: Path):
    # Grafana's $job variable stands for a regular expression of services.
    queries = [q.replace("$job", "stopline-.+") for q in _dashboard_queries()]
    rules: dict[str, Any] = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"q{i}", "expr": q} for i, q in enumerate(queries)]}
        ]
    }
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump(rules))
    out = run(tool("promtool"), "check", "rules", tmp_path / "dashboard.rules.yml")
    assert f"SUCCESS: {len(queries)} rules found" in out


def test_every_metric_the_rules_and_the_dashboard_use_is_exported():
    exported = _exported() | PROMETHEUS_OWN
    used = _names(_rule_queries()) | _names(_dashboard_queries())
    assert used - exported == set()
    # The ones the rules stand on, by name: a rename in the code must not leave an alert silent.
    assert {
        "stopline_consumer_lag",
        "stopline_consumer_progress_timestamp_seconds",
        "stopline_outbox_oldest_pending_seconds",
        "stopline_instructions_overdue",
        "stopline_outbox_dead_total",
        "stopline_scorer_dead_letters_total",
        "stopline_notifier_dead_letters_total",
        "stopline_coordination_dead_letters_total",
        "stopline_ready",
        "process_start_time_seconds",
        "stopline_audit_chain_ok",
        "stopline_audit_verified_timestamp_seconds",
    } <= _names(_rule_queries())


def test_every_label_the_queries_select_on_is_the_metrics_own():
    labels = _labels()
    targets = {"job", "instance"}  # Prometheus's own, on every series
    selectors = re.compile(r"\b(stopline_[a-z0-9_]+)\{([^}]*)\}")
    checked = 0
    for query in _rule_queries() + _dashboard_queries():
        for name, matchers in selectors.findall(query):
            used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
            assert used - targets <= labels[name], f"{name}{{{matchers}}}: {sorted(labels[name])}"
            checked += 1
    assert checked >= 5


def test_the_dashboard_is_well_formed():
    dashboard = json.loads(Path(DASHBOARD).read_text())
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job"}
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
