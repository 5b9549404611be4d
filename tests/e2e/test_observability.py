"""Prometheus, the alert rules and both Grafana dashboards, against the real platform.

Debian's `prometheus` (with `promtool`) must be installed: `make test` runs `make system-deps`.
A Prometheus on a free port scrapes the session's services every second; after `mentoring demo`,
a bulk matching run and one undecodable message, every query of every dashboard panel must
return data, and the alert rules must evaluate cleanly on the live series.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mentoring.clients import Clients
from mentoring.stack import SERVICES, Stack, free_port
from services.common.api import analytics_pb2, matching_pb2
from tests.e2e.support import eventually, produce

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
ORGANIZATION = "demo-e2e-obs"
SCRAPE_INTERVAL = "1s"
# What Grafana substitutes for its built-in variables, for the shipped 5 s scrape interval:
# $__rate_interval is max($__interval + scrape interval, 4 x scrape interval).
BUILT_INS = {"__rate_interval": "20s", "__interval": "5s", "__range": "5m"}


def system_binary(name: str) -> str:
    path = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    assert path, f"`{name}` is not installed: run `make system-deps` (Debian package prometheus)"
    return path


def run(argv: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def render_config(stack: Stack, folder: Path) -> Path:
    """prometheus-local.yml aimed at the stack's metrics ports, with rules.yml beside it (the
    config loads `rules.yml` relative to its own folder, as in deploy/ and in compose)."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus-local.yml").read_text())
    config["global"].update(
        scrape_interval=SCRAPE_INTERVAL,
        scrape_timeout=SCRAPE_INTERVAL,
        evaluation_interval=SCRAPE_INTERVAL,
    )
    assert config["rule_files"] == ["rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for name, job in jobs.items():
        job["static_configs"] = [{"targets": [f"127.0.0.1:{stack.ports.metrics[name]}"]}]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROMETHEUS_DIR / "rules.yml", folder / "rules.yml")
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    def api(self, path: str, *, post: bool = True, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        data = query.encode() if post and params else None
        url = f"{self.url}{path}" if post or not params else f"{self.url}{path}?{query}"
        try:
            with urllib.request.urlopen(url, data=data, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path} {params}: {error.read().decode()}") from error
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("/api/v1/query", query=expr)["result"])

    def query_range(self, expr: str) -> list[dict[str, Any]]:
        """As Grafana asks for a panel: a range query over everything Prometheus has seen."""
        now = time.time()
        result = self.api(
            "/api/v1/query_range",
            query=expr,
            start=f"{self.started:.3f}",
            end=f"{now:.3f}",
            step="1",
        )["result"]
        return list(result)

    def label_values(self, label: str, selector: str) -> list[str]:
        return list(self.api(f"/api/v1/label/{label}/values", post=False, **{"match[]": selector}))

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = system_binary("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    config = render_config(stack, folder / "config")
    run([system_binary("promtool"), "check", "config", str(config)])
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", process, log, time.time())
    try:

        def ready() -> bool:
            assert process.poll() is None, f"prometheus exited\n{server.tail()}"
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        eventually("Prometheus to be ready", ready, timeout=30)

        def targets_up() -> bool:
            targets = server.api("/api/v1/targets")["activeTargets"]
            return len(targets) == len(SERVICES) and all(t["health"] == "up" for t in targets)

        eventually("every service's /metrics to be scraped", targets_up, timeout=30)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Demo:
    program_id: str
    poison_topic: str


@pytest.fixture(scope="module")
def demo(stack: Stack, clients: Clients, prometheus: Prometheus) -> Demo:
    """The demo's journey, one bulk matching run and one undecodable event, seen by Prometheus."""
    result = subprocess.run(
        [sys.executable, "-m", "mentoring.cli", "demo", "--organization", ORGANIZATION],
        capture_output=True,
        text=True,
        env={**stack.client_env(), "COLUMNS": "200"},
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(rf"\(([0-9a-f-]{{36}})\) in organization {ORGANIZATION}", result.stdout)
    assert found, result.stdout
    program_id = found.group(1)

    run = clients.matching.StartMatchingRun(
        matching_pb2.StartMatchingRunRequest(
            organization_id=ORGANIZATION, program_id=program_id, requested_by="e2e-observability"
        )
    )
    request = matching_pb2.GetMatchingRunRequest(organization_id=ORGANIZATION, run_id=run.run_id)
    eventually(
        "the bulk matching run to complete",
        lambda: (
            clients.matching.GetMatchingRun(request).status == matching_pb2.RUN_STATUS_COMPLETED
        ),
    )
    # Only analytics reads relationship-started: it dead-letters this and goes on.
    poison_topic = "relationship-started"
    produce(
        stack.ports.bootstrap,
        [(poison_topic, f"poison/{uuid.uuid4().hex}".encode(), b"\xff not protobuf")],
    )

    kpi = f'mentoring_program_kpi{{organization="{ORGANIZATION}", program="{program_id}"'

    def scraped() -> bool:
        mentees = prometheus.query(f'{kpi}, kpi="mentees"}} == 36')
        runs = prometheus.query(f'{kpi}, kpi="matching_runs"}} >= 1')
        letters = prometheus.query(
            f'mentoring_events_dead_lettered_total{{topic="{poison_topic}", group="analytics"}}'
        )
        return bool(mentees and runs and letters)

    eventually("Prometheus to scrape the demo's KPIs and the dead letter", scraped, timeout=40)
    return Demo(program_id, poison_topic)


def test_rules_pass_promtool_checks_and_unit_tests() -> None:
    promtool = system_binary("promtool")
    assert "SUCCESS" in run([promtool, "check", "rules", str(PROMETHEUS_DIR / "rules.yml")])
    for config in ("prometheus.yml", "prometheus-local.yml"):
        out = run([promtool, "check", "config", config], cwd=PROMETHEUS_DIR)
        assert "1 rule files found" in out, out
    assert "SUCCESS" in run([promtool, "test", "rules", "rules_test.yml"], cwd=PROMETHEUS_DIR)


def substitute(expr: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def variables(dashboard: dict[str, Any], prometheus: Prometheus) -> dict[str, str]:
    """Each template variable's value for the demo, read the way Grafana reads it: its
    label_values() query, after the variables it depends on."""
    values = dict(BUILT_INS)
    for variable in dashboard["templating"]["list"]:
        query = substitute(variable["query"]["query"], values)
        found = re.fullmatch(r"label_values\((.+), *(\w+)\)", query)
        assert found, query
        options = prometheus.label_values(found.group(2), found.group(1))
        name = variable["name"]
        if name == "organization":
            assert ORGANIZATION in options, options
            values[name] = ORGANIZATION
        elif name == "program":
            assert len(options) == 1, options  # the demo's program, alone in its organization
            values[name] = options[0]
        elif name == "job":
            assert set(SERVICES) <= set(options), options
            values[name] = variable["allValue"]
        else:
            raise AssertionError(f"no value for the variable {name} in the test")
    return values


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_panel_has_data(prometheus: Prometheus, demo: Demo, path: Path) -> None:
    dashboard = json.loads(path.read_text())
    values = variables(dashboard, prometheus)
    if "program" in values:
        assert values["program"] == demo.program_id
    queries = [
        (panel["title"], target["refId"], substitute(target["expr"], values))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert len(queries) >= 10
    empty = []
    for title, ref, expr in queries:

        def data(e: str = expr) -> list[dict[str, Any]] | None:
            return prometheus.query_range(e) or None

        try:
            # Rates need two samples in their window: give a just-created series a moment.
            eventually(f"{title}/{ref}", data, timeout=10)
        except AssertionError:
            empty.append(f"{title} [{ref}]: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_program_overview_agrees_with_the_analytics_api(
    prometheus: Prometheus, demo: Demo, clients: Clients
) -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/program-overview.json").read_text())
    values = variables(dashboard, prometheus)
    by_title = {panel["title"]: panel for panel in dashboard["panels"]}

    def value(title: str, legend: str | None = None) -> float:
        targets = by_title[title]["targets"]
        (expr,) = [t["expr"] for t in targets if legend is None or t["legendFormat"] == legend]
        (sample,) = prometheus.query(substitute(expr, values))
        return float(sample["value"][1])

    kpis = clients.analytics.GetProgramKpis(
        analytics_pb2.GetProgramKpisRequest(
            organization_id=ORGANIZATION, program_id=demo.program_id
        )
    )
    assert (kpis.mentors, kpis.mentees) == (14, 36)
    assert kpis.matching_runs >= 1
    panels = {
        ("Mentors", None): kpis.mentors,
        ("Mentees", None): kpis.mentees,
        ("Matches", "proposed"): kpis.matches_proposed,
        ("Matches", "accepted"): kpis.matches_accepted,
        ("Matches", "declined"): kpis.matches_declined,
        ("Matches", "expired"): kpis.matches_expired,
        ("Relationships", "active"): kpis.active_relationships,
        ("Relationships", "completed"): kpis.relationships_completed,
        ("Relationships", "closed early"): kpis.relationships_closed_early,
        ("Sessions", None): kpis.sessions,
        ("Matching runs", None): kpis.matching_runs,
    }
    assert {key: value(*key) for key in panels} == panels
    assert value("Hours of mentoring") == pytest.approx(kpis.session_minutes / 60)
    assert value("Match rate") == pytest.approx(kpis.matches_accepted / kpis.mentees)
    assert value("Average session") == pytest.approx(kpis.session_minutes / kpis.sessions)


def test_alert_rules_evaluate_on_live_data(prometheus: Prometheus, demo: Demo) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = prometheus.api("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = eventually("every rule to be evaluated", evaluated, timeout=20)
    assert len(rules) == 7
    assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules] == [
        (r["name"], "ok", "") for r in rules
    ]

    def dead_letter_alert() -> dict[str, Any] | None:
        for alert in prometheus.api("/api/v1/alerts")["alerts"]:
            labels = alert["labels"]
            if (
                labels["alertname"] == "MentoringEventsDeadLettered"
                and labels.get("topic") == demo.poison_topic
                # Notifications reads the topic too and fires its own.
                and labels.get("group") == "analytics"
                and alert["state"] == "firing"
            ):
                found: dict[str, Any] = alert
                return found
        return None

    alert = eventually("the dead-letter alert to fire", dead_letter_alert, timeout=20)
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["group"] == "analytics"
    assert "dead-letter topic" in alert["annotations"]["description"]
    firing = {a["labels"]["alertname"] for a in prometheus.api("/api/v1/alerts")["alerts"]}
    assert "MentoringServiceDown" not in firing
