"""Build the Grafana dashboards in deploy/grafana/dashboards/ from the panels defined here.

The JSON files are this script's output, provisioned into Grafana read-only
(deploy/grafana/provisioning/dashboards/dashboards.yml): change a panel here, then run

    .venv/bin/python deploy/grafana/build_dashboards.py          # rewrite the JSON
    .venv/bin/python deploy/grafana/build_dashboards.py --check  # fail if the JSON is stale

tests/deploy/test_dashboards.py runs the check; tests/e2e/test_observability.py runs every
panel's query against a real Prometheus scraping the real services. Standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "dashboards"
# The provisioned data source (provisioning/datasources/prometheus.yml) has this fixed uid.
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 39
GRID_WIDTH = 24

# gRPC codes a caller causes; every other non-OK code is a server error (as in rules.yml).
CALLER_CODES = "OK|INVALID_ARGUMENT|NOT_FOUND|ALREADY_EXISTS|FAILED_PRECONDITION|PERMISSION_DENIED"

Json = dict[str, Any]


def target(expr: str, legend: str = "", *, instant: bool = False) -> Json:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
    }


def variable(
    name: str, label: str, query: str, *, multi: bool = False, all_value: str | None = None
) -> Json:
    """A query variable from `label_values(selector, label)`; with all_value, multi-select with
    an "All" option matching that regex (use the variable with =~)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "StandardVariableQuery"},
        "definition": query,
        "refresh": 2,  # on time range change: new organizations and programs appear
        "sort": 1,
        "regex": "",
        "hide": 0,
        "multi": multi,
        "includeAll": all_value is not None,
        **({"allValue": all_value} if all_value is not None else {}),
        "current": {},
        "options": [],
        "skipUrlSync": False,
    }


def _field_config(unit: str, **defaults: Any) -> Json:
    return {"defaults": {"unit": unit, **defaults}, "overrides": []}


THRESHOLDS_PLAIN = {"mode": "absolute", "steps": [{"color": "blue", "value": None}]}


def stat(
    title: str,
    targets: list[Json],
    *,
    unit: str = "short",
    description: str = "",
    decimals: int | None = None,
    thresholds: Json | None = None,
    mappings: list[Json] | None = None,
    w: int = 4,
    h: int = 4,
) -> Json:
    defaults: Json = {"thresholds": thresholds or THRESHOLDS_PLAIN, "mappings": mappings or []}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "targets": targets,
        "fieldConfig": _field_config(unit, **defaults),
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        },
        "gridPos": {"w": w, "h": h},
    }


def timeseries(
    title: str,
    targets: list[Json],
    *,
    unit: str = "short",
    description: str = "",
    w: int = 12,
    h: int = 8,
    stack: bool = False,
    overrides: list[Json] | None = None,
) -> Json:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "custom": {
                    "drawStyle": "line",
                    "lineInterpolation": "linear",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": False,
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                },
            },
            "overrides": overrides or [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "gridPos": {"w": w, "h": h},
    }


def row(title: str) -> Json:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24}}


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    variables: list[Json]
    panels: list[Json] = field(default_factory=list)
    time_from: str = "now-6h"
    links: list[Json] = field(default_factory=list)

    def to_json(self) -> Json:
        return {
            "id": None,
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["mentoring"],
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "refresh": "30s",
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "links": self.links,
            "templating": {"list": self.variables},
            "panels": layout(self.panels),
        }


def layout(panels: list[Json]) -> list[Json]:
    """Give panels ids, refIds and grid positions: left to right, wrapping at 24 columns,
    a row header on a line of its own."""
    placed: list[Json] = []
    x = y = line_height = 0
    for number, source in enumerate(panels, start=1):
        panel = {"id": number, **source, "gridPos": dict(source["gridPos"])}
        w = panel["gridPos"]["w"]
        h = 1 if panel["type"] == "row" else panel["gridPos"]["h"]
        if panel["type"] == "row" or x + w > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        if panel["type"] != "row":
            panel["datasource"] = DATASOURCE
            panel["targets"] = [
                {**t, "refId": chr(ord("A") + i)} for i, t in enumerate(panel["targets"])
            ]
        x += w
        line_height = max(line_height, h)
        if panel["type"] == "row":
            x, y, line_height = 0, y + 1, 0
        placed.append(panel)
    return placed


# --- Program overview: for program coordinators ------------------------------------------------

PROGRAM = 'organization=~"$organization", program=~"$program"'


def kpi(name: str) -> str:
    """One KPI summed over the selected programs. `max by` first: should two analytics
    instances both export a program for a moment (rebalance), it still counts once."""
    return f'sum(max by (organization, program) (mentoring_program_kpi{{{PROGRAM}, kpi="{name}"}}))'


def kpi_targets(*names_and_legends: tuple[str, str]) -> list[Json]:
    return [target(kpi(name), legend) for name, legend in names_and_legends]


MATCHES = (
    ("matches_proposed", "proposed"),
    ("matches_accepted", "accepted"),
    ("matches_declined", "declined"),
    ("matches_expired", "expired"),
)
RELATIONSHIPS = (
    ("active_relationships", "active"),
    ("relationships_completed", "completed"),
    ("relationships_closed_early", "closed early"),
)
HOURS = f"{kpi('session_minutes')} / 60"
# Each program's mean rating weighted by its number of check-ins.
SATISFACTION = (
    f'sum(mentoring_program_kpi{{{PROGRAM}, kpi="satisfaction_mean"}} * ignoring(kpi) '
    f'mentoring_program_kpi{{{PROGRAM}, kpi="feedback_responses"}}) '
    f"/ clamp_min({kpi('feedback_responses')}, 1)"
)


def program_overview() -> Dashboard:
    return Dashboard(
        uid="mentoring-program-overview",
        title="Program overview",
        description=(
            "How a mentoring program is doing: sign-ups, matches, relationships and sessions, "
            "from the live KPIs the analytics service exports (mentoring_program_kpi)."
        ),
        time_from="now-30d",
        variables=[
            variable(
                "organization",
                "Organization",
                "label_values(mentoring_program_kpi, organization)",
            ),
            variable(
                "program",
                "Program",
                'label_values(mentoring_program_kpi{organization=~"$organization"}, program)',
                multi=True,
                all_value=".+",
            ),
        ],
        links=[
            {
                "type": "dashboards",
                "tags": ["mentoring"],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "title": "Mentoring dashboards",
            }
        ],
        panels=[
            row("Participants"),
            stat(
                "Applications",
                [target(kpi("applications"), "applications")],
                description="People who applied, before any screening.",
            ),
            stat(
                "Approved",
                [target(kpi("approvals"), "approved")],
                description="Applications approved (or admitted without screening).",
            ),
            stat("Mentors", [target(kpi("mentors"), "mentors")], description="Mentors enrolled."),
            stat("Mentees", [target(kpi("mentees"), "mentees")], description="Mentees enrolled."),
            stat(
                "Match rate",
                [target(f"{kpi('mentees_matched')} / clamp_min({kpi('mentees')}, 1)", "rate")],
                unit="percentunit",
                decimals=0,
                description="Enrolled mentees who have had a relationship.",
                thresholds={
                    "mode": "absolute",
                    "steps": [
                        {"color": "red", "value": None},
                        {"color": "orange", "value": 0.5},
                        {"color": "green", "value": 0.8},
                    ],
                },
            ),
            stat(
                "Active relationships",
                [target(kpi("active_relationships"), "active")],
                description="Pairs who both accepted and have not ended their relationship.",
            ),
            stat(
                "Hours of mentoring",
                [target(HOURS, "hours")],
                unit="short",
                decimals=1,
                description="Total length of the sessions logged.",
            ),
            stat(
                "Matching runs",
                [target(kpi("matching_runs"), "runs")],
                description="Bulk matching runs completed for the selected programs.",
            ),
            stat(
                "Median days to match",
                [
                    target(
                        "max(mentoring_program_kpi{" + PROGRAM + ', kpi="median_days_to_match"})',
                        "days",
                    )
                ],
                decimals=1,
                description="From approval to a mentee's first relationship (slowest program).",
            ),
            timeseries(
                "Sign-ups by role",
                kpi_targets(
                    ("mentor_applications", "mentor applications"),
                    ("mentee_applications", "mentee applications"),
                    ("approvals", "approved"),
                    ("rejections", "rejected"),
                ),
                description="Applications by role, and what screening made of them.",
                w=24,
            ),
            row("Matches"),
            stat(
                "Matches",
                kpi_targets(*MATCHES),
                w=12,
                h=8,
                description=(
                    "Proposals made by matching, coordinators and mentee requests, and how they "
                    "ended: accepted by both, declined by either, or expired unanswered."
                ),
            ),
            timeseries("Matches over time", kpi_targets(*MATCHES)),
            row("Relationships"),
            stat(
                "Relationships",
                kpi_targets(*RELATIONSHIPS),
                w=12,
                h=8,
                description="Active now, completed as planned, and closed before their end.",
            ),
            timeseries("Relationships over time", kpi_targets(*RELATIONSHIPS)),
            row("Engagement health"),
            stat(
                "At risk",
                [target(kpi("relationships_at_risk"), "at risk")],
                description="Active pairs out of touch for two meeting intervals, or poorly rated.",
                thresholds={
                    "mode": "absolute",
                    "steps": [
                        {"color": "green", "value": None},
                        {"color": "orange", "value": 1},
                        {"color": "red", "value": 5},
                    ],
                },
            ),
            stat(
                "Satisfaction",
                [target(SATISFACTION, "rating")],
                decimals=2,
                description="Mean check-in rating, 1 to 5, over every check-in (0: none yet).",
            ),
            stat(
                "Goal completion",
                [target(f"{kpi('goals_achieved')} / clamp_min({kpi('goals_set')}, 1)", "goals")],
                unit="percentunit",
                decimals=0,
            ),
            stat(
                "Training completion",
                [
                    target(
                        f"{kpi('participants_trained')} / "
                        f"clamp_min({kpi('mentors')} + {kpi('mentees')}, 1)",
                        "trained",
                    )
                ],
                unit="percentunit",
                decimals=0,
                description="Enrolled people who completed at least one training.",
            ),
            timeseries(
                "Relationships at risk",
                [target(kpi("relationships_at_risk"), "at risk")],
                w=12,
            ),
            timeseries(
                "Messages and feedback",
                kpi_targets(("messages", "messages"), ("feedback_responses", "check-ins")),
                w=12,
            ),
            row("Sessions"),
            stat("Sessions", [target(kpi("sessions"), "sessions")], w=6),
            stat("Hours", [target(HOURS, "hours")], w=6, decimals=1),
            stat(
                "Average session",
                [target(f"{kpi('session_minutes')} / clamp_min({kpi('sessions')}, 1)", "minutes")],
                unit="m",
                decimals=0,
                w=6,
            ),
            stat(
                "Sessions per active relationship",
                [
                    target(
                        f"{kpi('sessions')} / clamp_min({kpi('active_relationships')}, 1)",
                        "sessions",
                    )
                ],
                decimals=1,
                w=6,
            ),
            timeseries(
                "Sessions and hours",
                [target(kpi("sessions"), "sessions"), target(HOURS, "hours")],
                w=12,
                overrides=[
                    {
                        "matcher": {"id": "byName", "options": "hours"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                    }
                ],
            ),
            timeseries(
                "Matching runs over time",
                [target(kpi("matching_runs"), "runs")],
                w=12,
            ),
        ],
    )


# --- Platform operations: for whoever runs the platform ------------------------------------------

JOB = 'job=~"$job"'
RATE = "$__rate_interval"
APIS = f'{JOB}, grpc_service!~"grpc[.].*"'  # our APIs, without health checks and reflection


def rpc_quantile(q: float) -> str:
    return (
        f"histogram_quantile({q}, sum by (grpc_service, grpc_method, le) "
        f"(rate(grpc_server_handling_seconds_bucket{{{APIS}}}[{RATE}])))"
    )


def histogram_quantiles(metric: str, window: str) -> list[Json]:
    return [
        target(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{JOB}}}[{window}])))",
            legend,
        )
        for q, legend in ((0.5, "p50"), (0.99, "p99"))
    ]


def zero_filled(expr: str, by: str, fallback_metric: str) -> str:
    """expr, or 0 for every `by` group the fallback counter knows: a quiet series reads 0
    instead of "No data" (counters with labels only appear on their first increment)."""
    return f"{expr} or sum by ({by}) (rate({fallback_metric}{{{JOB}}}[{RATE}])) * 0"


def new_or_increase(selector: str, window: str) -> str:
    """How much a counter grew in the window, counting a series that appeared in it with its
    whole value: counters with labels are created at their first increment, which increase()
    alone cannot see."""
    return f"({selector} unless {selector} offset {window}) or increase({selector}[{window}])"


DEAD_LETTERS = f"mentoring_events_dead_lettered_total{{{JOB}}}"


def _server_error_ratio() -> str:
    by = "grpc_service, grpc_method"
    errors = (
        f"sum by ({by}) "
        f'(rate(grpc_server_handled_total{{{APIS}, grpc_code!~"{CALLER_CODES}"}}[{RATE}]))'
    )
    total = f"sum by ({by}) (rate(grpc_server_handled_total{{{APIS}}}[{RATE}]))"
    return f"({errors} or {total} * 0) / {total}"


def platform_operations() -> Dashboard:
    return Dashboard(
        uid="mentoring-platform-operations",
        title="Platform operations",
        description=(
            "Health of the four services: gRPC traffic, errors and latency, Kafka events, "
            "consumer lag, dead letters and the matching engine. "
            "Alerts: deploy/prometheus/rules.yml."
        ),
        time_from="now-3h",
        variables=[
            variable(
                "job",
                "Service",
                "label_values(up, job)",
                multi=True,
                all_value=".+",
            )
        ],
        links=[
            {
                "type": "dashboards",
                "tags": ["mentoring"],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "title": "Mentoring dashboards",
            }
        ],
        panels=[
            row("Services"),
            stat(
                "Services up",
                [target(f"up{{{JOB}}}", "{{job}}")],
                w=24,
                description="Whether Prometheus reaches each service's /metrics.",
                thresholds={
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                },
                mappings=[
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "DOWN", "color": "red", "index": 0},
                            "1": {"text": "UP", "color": "green", "index": 1},
                        },
                    }
                ],
            ),
            row("gRPC APIs"),
            timeseries(
                "RPC rate by method",
                [
                    target(
                        "sum by (grpc_service, grpc_method) "
                        f"(rate(grpc_server_handled_total{{{APIS}}}[{RATE}]))",
                        "{{grpc_service}}/{{grpc_method}}",
                    )
                ],
                unit="reqps",
            ),
            timeseries(
                "Server error ratio by method",
                [target(_server_error_ratio(), "{{grpc_service}}/{{grpc_method}}")],
                unit="percentunit",
                description=(
                    "Share of RPCs ending in a server-side error: codes other than OK, "
                    "INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION and "
                    "PERMISSION_DENIED. Alert above 5 %."
                ),
            ),
            timeseries(
                "RPC latency p50",
                [target(rpc_quantile(0.5), "{{grpc_service}}/{{grpc_method}}")],
                unit="s",
            ),
            timeseries(
                "RPC latency p99",
                [target(rpc_quantile(0.99), "{{grpc_service}}/{{grpc_method}}")],
                unit="s",
                description="Alert when above 1 s for 10 minutes.",
            ),
            timeseries(
                "Responses by status code",
                [
                    target(
                        "sum by (grpc_service, grpc_code) "
                        f"(rate(grpc_server_handled_total{{{APIS}}}[{RATE}]))",
                        "{{grpc_service}} {{grpc_code}}",
                    )
                ],
                unit="reqps",
                w=24,
                stack=True,
            ),
            row("Events (Kafka)"),
            timeseries(
                "Events produced per topic",
                [
                    target(
                        f"sum by (topic) (rate(mentoring_events_produced_total{{{JOB}}}[{RATE}]))",
                        "{{topic}}",
                    )
                ],
                unit="ops",
            ),
            timeseries(
                "Events consumed per topic and group",
                [
                    target(
                        "sum by (topic, group) "
                        f"(rate(mentoring_events_consumed_total{{{JOB}}}[{RATE}]))",
                        "{{topic}} ({{group}})",
                    )
                ],
                unit="ops",
            ),
            timeseries(
                "Consumer lag",
                [
                    target(
                        f"sum by (topic, group) (mentoring_consumer_lag_messages{{{JOB}}})",
                        "{{topic}} ({{group}})",
                    )
                ],
                description=(
                    "Messages behind the end of the topic, summed over the partitions each "
                    "group owns. Alert when above 1000 and growing for 10 minutes."
                ),
            ),
            timeseries(
                "Dead letters",
                [
                    target(
                        zero_filled(
                            f"sum by (topic, group) ({new_or_increase(DEAD_LETTERS, RATE)})",
                            "topic, group",
                            "mentoring_events_consumed_total",
                        ),
                        "{{topic}} ({{group}})",
                    )
                ],
                w=8,
                description=(
                    "Messages a consumer could not decode or apply, sent to the dead-letter "
                    "topic. Any in the last 10 minutes raises an alert."
                ),
            ),
            stat(
                "Dead letters in range",
                [
                    target(
                        f"sum({new_or_increase(DEAD_LETTERS, '$__range')}) or vector(0)",
                        "dead letters",
                    )
                ],
                w=4,
                h=8,
                thresholds={
                    "mode": "absolute",
                    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
                },
                decimals=0,
            ),
            timeseries(
                "Assigned partitions per process",
                [
                    target(
                        "sum by (instance, group) "
                        f"(mentoring_consumer_assigned_partitions{{{JOB}}})",
                        "{{group}} @ {{instance}}",
                    )
                ],
                description="How the consumer groups split the partitions between processes.",
                w=24,
            ),
            row("Matching engine"),
            timeseries(
                "Bulk matching run duration",
                histogram_quantiles("matching_run_seconds", "15m"),
                unit="s",
                w=8,
                description=(
                    "Runs finished in the last 15 minutes. Alert when the p99 exceeds 60 s."
                ),
            ),
            timeseries(
                "Planning duration",
                histogram_quantiles("matching_plan_seconds", RATE),
                unit="s",
                w=8,
                description="Time to plan proposals for one program after new events.",
            ),
            timeseries(
                "Proposals by origin",
                [
                    target(
                        f"sum by (origin) (rate(matching_proposals_total{{{JOB}}}[{RATE}]))",
                        "{{origin}}",
                    )
                ],
                unit="ops",
                w=8,
            ),
        ],
    )


DASHBOARDS = {
    "program-overview.json": program_overview,
    "platform-operations.json": platform_operations,
}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build().to_json(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON files are stale")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out / name
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale.append(name)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{path} (committed)",
                    f"{path} (generated)",
                    n=1,
                )
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(
            f"stale: {', '.join(stale)}; run `python deploy/grafana/build_dashboards.py`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
