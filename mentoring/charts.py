"""The report's charts: matplotlib figures rendered to inline SVG. Pure: data in, markup out.

Each function returns None when there is nothing to draw, so the report can say "no data yet"
instead of showing an empty frame.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mentoring.figures import RATINGS, day
from services.common.api import analytics_pb2

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

MENTORS, MENTEES, SESSIONS, HOURS = "#2f6db5", "#e08a2c", "#3b8c5a", "#7b4ea3"
PARTICIPANTS, OTHERS = "#2f6db5", "#a3a3a3"
# Text stays text (smaller, selectable; matplotlib escapes it), in the viewer's sans-serif
# font; "$" in a skill or campaign name is a character, not the start of a formula.
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
}
# No <metadata> block (it names the creator's and licence's web sites).
NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


def _svg(figure: Figure, name: str) -> str:
    """The figure as an <svg> element for inlining in HTML: no XML prologue, and ids salted
    with the chart's name so that several charts in one page never share one."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.id": f"chart-{name}"}):
        figure.savefig(buffer, format="svg", metadata=NO_METADATA, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float = 7.0, height: float = 3.0) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def _weeks(ax: Axes) -> None:
    ax.xaxis_date()
    locator = AutoDateLocator(maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _week_starts(weekly: Sequence[analytics_pb2.WeeklyKpis]) -> list[float]:
    """Monday of each week, as matplotlib's day numbers; bars 5 days wide leave a gap."""
    return [float(date2num(day(w.week_start))) for w in weekly]  # type: ignore[no-untyped-call]


def signups(weekly: Sequence[analytics_pb2.WeeklyKpis]) -> str | None:
    """Applications per week, mentors and mentees stacked, with approvals as a line."""
    if not any(w.mentor_applications or w.mentee_applications or w.approvals for w in weekly):
        return None
    with matplotlib.rc_context(STYLE):
        figure, ax = _figure()
        weeks = _week_starts(weekly)
        mentors = [w.mentor_applications for w in weekly]
        mentees = [w.mentee_applications for w in weekly]
        ax.bar(weeks, mentors, width=5, color=MENTORS, label="mentor applications")
        ax.bar(weeks, mentees, width=5, bottom=mentors, color=MENTEES, label="mentee applications")
        ax.plot(weeks, [w.approvals for w in weekly], "k.-", label="approvals")
        ax.set_ylabel("per week")
        _weeks(ax)
        figure.legend(loc="outside upper center", ncols=3, frameon=False)
        return _svg(figure, "signups")


def sessions(weekly: Sequence[analytics_pb2.WeeklyKpis]) -> str | None:
    """Sessions held per week, and their hours on a second axis."""
    if not any(w.sessions for w in weekly):
        return None
    with matplotlib.rc_context(STYLE):
        figure, ax = _figure()
        weeks = _week_starts(weekly)
        ax.bar(weeks, [w.sessions for w in weekly], width=5, color=SESSIONS, label="sessions")
        ax.set_ylabel("sessions per week")
        _weeks(ax)
        hours_ax = ax.twinx()
        hours_ax.spines["right"].set_visible(True)
        hours = [w.session_minutes / 60 for w in weekly]
        hours_ax.plot(weeks, hours, ".-", color=HOURS, label="hours")
        hours_ax.set_ylabel("hours per week")
        hours_ax.set_ylim(bottom=0)
        # The figure's legend gathers both axes' entries.
        figure.legend(loc="outside upper center", ncols=2, frameon=False)
        return _svg(figure, "sessions")


def skill_balance(skills: Sequence[analytics_pb2.SkillSupplyDemand]) -> str | None:
    """Mentor places offered against mentees seeking, per skill, worst shortage on top."""
    if not skills:
        return None
    with matplotlib.rc_context(STYLE):
        figure, ax = _figure(height=1.2 + 0.32 * len(skills))
        rows = list(range(len(skills)))
        ax.barh(
            [r - 0.2 for r in rows],
            [s.mentor_capacity for s in skills],
            height=0.4,
            color=MENTORS,
            label="mentor places offered",
        )
        ax.barh(
            [r + 0.2 for r in rows],
            [s.mentees for s in skills],
            height=0.4,
            color=MENTEES,
            label="mentees seeking",
        )
        ax.set_yticks(rows, [s.skill for s in skills])
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        figure.legend(loc="outside upper center", ncols=2, frameon=False)
        return _svg(figure, "skills")


def satisfaction(distribution: Sequence[int]) -> str | None:
    """How many check-ins gave each rating, 1 to 5."""
    if not any(distribution):
        return None
    with matplotlib.rc_context(STYLE):
        figure, ax = _figure(width=5.0, height=2.6)
        colors = ["#c0392b", "#e67e22", "#f1c40f", "#7fb843", "#2e8b57"]
        bars = ax.bar([str(r) for r in RATINGS], distribution, color=colors)
        ax.bar_label(bars)
        ax.set_xlabel("check-in rating")
        ax.set_ylabel("responses")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        return _svg(figure, "satisfaction")


def retention(rows: Sequence[analytics_pb2.RetentionRow]) -> str | None:
    """Still employed after N months: participants against non-participants."""
    rows = [r for r in rows if r.participants or r.non_participants]
    if not rows:
        return None
    with matplotlib.rc_context(STYLE):
        figure, ax = _figure(width=5.5, height=2.8)
        slots = list(range(len(rows)))
        for offset, rate, count, color, label in (
            (-0.2, "participant_rate", "participants", PARTICIPANTS, "program participants"),
            (0.2, "non_participant_rate", "non_participants", OTHERS, "non-participants"),
        ):
            bars = ax.bar(
                [s + offset for s in slots],
                [getattr(r, rate) * 100 for r in rows],
                width=0.4,
                color=color,
                label=label,
            )
            ax.bar_label(
                bars, [f"{getattr(r, rate):.0%} of {getattr(r, count)}" for r in rows], fontsize=8
            )
        ax.set_xticks(slots, [f"after {r.months} months" for r in rows])
        ax.set_ylim(0, 110)
        ax.yaxis.set_major_formatter(PercentFormatter())
        ax.set_ylabel("still employed")
        figure.legend(loc="outside upper center", ncols=2, frameon=False)
        return _svg(figure, "retention")
