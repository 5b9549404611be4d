"""The leadership report: one self-contained HTML file (inline CSS and SVG, no network needed to
view it). Pure: the analytics answers in, the page out. Every text is escaped by the template
(names, skills and campaigns come from users); only the charts' SVG, which matplotlib has
escaped already, goes in as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from mentoring import charts, figures
from services.common.api import analytics_pb2


@dataclass
class ReportData:
    organization: str
    program_name: str
    kpis: analytics_pb2.ProgramKpis
    skills: list[analytics_pb2.SkillSupplyDemand]
    at_risk: list[analytics_pb2.AtRiskRelationship]
    at_risk_total: int
    retention: list[analytics_pb2.RetentionRow]
    generated_at: datetime
    # participant id → display name, for the at-risk list.
    names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    detail: str


def _rate(value: float, of: int) -> str:
    """A share, or "-" while there is nothing to take a share of."""
    return figures.show(value, "rate") if of else "-"


def headlines(k: analytics_pb2.ProgramKpis) -> list[Headline]:
    """The figures leadership asks for first."""
    trend = f", trend {figures.show(k.satisfaction_trend, 'trend')}" if k.feedback_responses else ""
    matched = bool(k.mentees_matched)
    return [
        Headline(
            "Match rate",
            _rate(k.match_rate, k.mentees),
            f"{k.mentees_matched:,} of {k.mentees:,} mentees matched",
        ),
        Headline(
            "Time to match",
            f"{k.median_days_to_match:.1f} days" if matched else "-",
            f"median; mean {k.mean_days_to_match:.1f}" if matched else "no match yet",
        ),
        Headline(
            "Active relationships",
            figures.show(k.active_relationships),
            f"{k.relationships_started:,} started, {k.relationships_completed:,} completed",
        ),
        Headline(
            "At risk",
            figures.show(k.relationships_at_risk),
            "active relationships showing warning signs",
        ),
        Headline(
            "Goal completion",
            _rate(k.goal_completion_rate, k.goals_set),
            f"{k.goals_achieved:,} of {k.goals_set:,} goals achieved",
        ),
        Headline(
            "Training completion",
            _rate(k.training_completion_rate, k.mentors + k.mentees),
            f"{k.participants_trained:,} participants trained",
        ),
        Headline(
            "Satisfaction",
            figures.show(k.satisfaction_mean, "rating"),
            f"mean of {k.feedback_responses:,} check-ins (1-5){trend}",
        ),
        Headline(
            "Sessions",
            figures.show(k.sessions),
            f"{k.session_hours:,.1f} hours, {k.messages:,} messages",
        ),
    ]


def _markup(svg: str | None) -> Markup | None:
    return Markup(svg) if svg is not None else None


def _grouped_figures(k: analytics_pb2.ProgramKpis) -> list[tuple[str, list[tuple[str, str]]]]:
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    for figure in figures.FIGURES:
        if not groups or groups[-1][0] != figure.group:
            groups.append((figure.group, []))
        groups[-1][1].append((figure.label, figures.show(getattr(k, figure.field), figure.unit)))
        if figure.field == "satisfaction_trend":
            for rating, count in zip(figures.RATINGS, figures.ratings(k), strict=True):
                groups[-1][1].append((f"rated {rating}", figures.show(count)))
    return groups


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("mentoring", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(data: ReportData) -> str:
    k = data.kpis
    first, last = figures.period(k)
    distribution = figures.ratings(k)
    quiet = not (k.events or k.applications or k.mentors or k.mentees or data.skills)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            k=k,
            first=first,
            last=last,
            quiet=quiet,
            headlines=headlines(k),
            groups=_grouped_figures(k),
            show=figures.show,
            day=figures.day,
            distribution=distribution,
            signups_chart=_markup(charts.signups(k.weekly)),
            sessions_chart=_markup(charts.sessions(k.weekly)),
            skills_chart=_markup(charts.skill_balance(data.skills)),
            satisfaction_chart=_markup(charts.satisfaction(distribution)),
            retention_chart=_markup(charts.retention(data.retention)),
        )
    )
