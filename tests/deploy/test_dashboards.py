"""The Grafana dashboards are code: the JSON is deploy/grafana/build_dashboards.py's output.

Their queries run against a real Prometheus in tests/e2e/test_observability.py; here, what can be
checked without one: the JSON is fresh, well formed for Grafana, and covers what it should.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from services.analytics.kpis import GAUGED

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
SCRIPT = GRAFANA / "build_dashboards.py"
BUILT_INS = {"__rate_interval", "__interval", "__range"}


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboards", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def dashboard(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA / "dashboards" / name).read_text())
    return data


def test_committed_json_is_what_the_script_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        "deploy/grafana/dashboards/ is stale: run `.venv/bin/python "
        f"deploy/grafana/build_dashboards.py`\n{result.stdout}{result.stderr}"
    )
    assert set(builder().DASHBOARDS) == {p.name for p in (GRAFANA / "dashboards").glob("*.json")}


def test_check_fails_on_stale_json(tmp_path: Path) -> None:
    module = builder()
    assert module.main(["--out", str(tmp_path)]) == 0
    assert module.main(["--check", "--out", str(tmp_path)]) == 0
    stale = tmp_path / "program-overview.json"
    stale.write_text(stale.read_text().replace("Program overview", "Edited by hand"))
    assert module.main(["--check", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("program-overview.json", "Program overview"),
        ("platform-operations.json", "Platform operations"),
    ],
)
def test_dashboard_is_well_formed(name: str, title: str) -> None:
    board = dashboard(name)
    assert board["title"] == title
    assert board["uid"] and len(board["uid"]) <= 40
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    (source,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    variables = {v["name"] for v in board["templating"]["list"]}
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables | BUILT_INS, (panel["title"], used)
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == source["uid"]
        assert re.fullmatch(r"label_values\(.+, *\w+\)", variable["query"]["query"])


def expressions(name: str) -> str:
    return "\n".join(t["expr"] for p in dashboard(name)["panels"] for t in p.get("targets", []))


def test_program_overview_covers_the_program_kpis() -> None:
    board = dashboard("program-overview.json")
    variables = {v["name"]: v["query"]["query"] for v in board["templating"]["list"]}
    assert variables == {
        "organization": "label_values(mentoring_program_kpi, organization)",
        "program": 'label_values(mentoring_program_kpi{organization=~"$organization"}, program)',
    }
    shown = set(re.findall(r'kpi="(\w+)"', expressions("program-overview.json")))
    assert shown == {
        "mentors",
        "mentees",
        "matches_proposed",
        "matches_accepted",
        "matches_declined",
        "matches_expired",
        "active_relationships",
        "relationships_completed",
        "relationships_closed_early",
        "sessions",
        "session_minutes",
        "matching_runs",
        # Seed 004's coordinator dashboard: sign-ups and screening, time to match, health.
        "applications",
        "mentor_applications",
        "mentee_applications",
        "approvals",
        "rejections",
        "mentees_matched",
        "median_days_to_match",
        "relationships_at_risk",
        "satisfaction_mean",
        "feedback_responses",
        "goals_set",
        "goals_achieved",
        "participants_trained",
        "messages",
    }
    assert shown <= set(GAUGED), "every KPI a panel shows is exported by analytics"
    titles = {p["title"] for p in board["panels"]}
    assert {
        "Sign-ups by role",
        "Match rate",
        "Matches",
        "Relationships",
        "Sessions",
        "At risk",
        "Satisfaction",
    } <= titles


def test_platform_operations_covers_the_service_metrics() -> None:
    exprs = expressions("platform-operations.json")
    for metric in (
        "up",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "mentoring_events_produced_total",
        "mentoring_events_consumed_total",
        "mentoring_consumer_lag_messages",
        "mentoring_events_dead_lettered_total",
        "matching_run_seconds_bucket",
        "matching_plan_seconds_bucket",
    ):
        assert re.search(rf"\b{metric}\{{", exprs), metric
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


def test_grafana_loads_the_dashboards_folder_read_only() -> None:
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
    assert provider["disableDeletion"] is True
