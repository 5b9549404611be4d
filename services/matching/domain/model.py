"""The matching engine's vocabulary: people as matching sees them, criteria and their settings.

Pure data, no I/O. The scoring rules for each criterion are defined here, once, in words;
`criteria.py` implements them pair by pair with explanations, `candidates.py` vectorised for
bulk runs, and a property test holds the two to the same numbers.

Each criterion gives a pair a score in [0, 1] and says whether it passes as a hard filter.
"Unknown" (a field missing on either side) scores 0.5 and passes: a gap in a profile is not
evidence against a pair.

- SKILLS: the mentee's sought skills s_0..s_{n-1} are in priority order, weight w_i = n - i.
  r_i = max over the mentor's offered skills of relatedness(offered, s_i) (see taxonomy.py:
  1 same skill, 0.5 ancestor/descendant, 0.25 siblings, else 0). Score = sum(w_i r_i) / sum(w_i);
  0 if the mentee seeks nothing. Passes if score > 0.
- GOALS: mentee goals G_e, mentor goals G_m (areas they want to help with). Unknown if either is
  empty; else |G_e & G_m| / |G_e|. Passes if score > 0.
- SENIORITY: gap = mentor.job_level - mentee.job_level; unknown if either level is 0. With
  allow_reverse the band applies to |gap|; without, a negative gap scores 0 and fails. Inside
  [min_level_gap, max_level_gap] scores 1 and passes; outside, score max(0, 1 - distance / 3)
  where distance is how far gap lies outside the band, and fails.
- DEPARTMENT: unknown if either is empty; 1 if the preference (prefer_same_department: same,
  else different) is met, else 0. Passes if met.
- TIMEZONE: diff = circular difference of UTC offsets in hours (at most 12); unknown if either
  offset is None. Score max(0, 1 - diff / 12). Passes if diff <= max_timezone_hours.
- LOCATION: unknown if either is empty; 1 if equal (case-insensitive), else 0. Passes if equal.
- LANGUAGE: unknown if either has none; 1 if they share one, else 0. Passes if shared.
- DEMOGRAPHICS: only when the mentee opted in; otherwise 0.5 and passes. Opted in: the mean of
  gender equality and cultural background equality over the attributes both sides stated
  (0.5 if none). Passes if every attribute both stated is equal.
- AVAILABILITY: weekly overlap in minutes of the two sets of slots; unknown if either is empty.
  Score min(1, overlap / (2 * min_overlap_minutes)). Passes if overlap >= min_overlap_minutes.
- MENTEE_CHOICE: the mentee's ranked choices c_0..c_{k-1}; unknown if none. Mentor at rank j
  scores (k - j) / k; not chosen scores 0. Passes if chosen.

A pair's score is the weighted mean sum(weight_c * score_c) / sum(weight_c) over the program's
criteria with weight > 0 (1.0 if there are none). A hard criterion must pass and also counts with
its weight. Whatever the criteria, a pair is never allowed when: it is the same person
(participant id or HR id), the pair is excluded (declined before, "do not match again"), or there
is a reporting line between them (one is the other's manager or manager's manager; also a shared
manager when the program says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MENTOR, MENTEE = "mentor", "mentee"
MAX_WEIGHT = 10.0


class Kind(StrEnum):
    SKILLS = "skills"
    GOALS = "goals"
    SENIORITY = "seniority"
    DEPARTMENT = "department"
    TIMEZONE = "timezone"
    LOCATION = "location"
    LANGUAGE = "language"
    DEMOGRAPHICS = "demographics"
    AVAILABILITY = "availability"
    MENTEE_CHOICE = "mentee_choice"


class ReportingRule(StrEnum):
    # Never pair someone with their manager or their manager's manager (either direction).
    MANAGER_CHAIN = "manager_chain"
    # ...nor two people who report to the same manager.
    MANAGER_CHAIN_AND_PEERS = "manager_chain_and_peers"


@dataclass(frozen=True, slots=True)
class Slot:
    """A weekly availability window in minutes of the week, UTC: [start, end), 0..10080."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Person:
    participant_id: str
    role: str
    # Offered (mentor) or sought in priority order (mentee); canonical names (taxonomy.py).
    skills: tuple[str, ...] = ()
    hr_person_id: str = ""
    manager_id: str = ""  # the manager's HR person id
    department: str = ""
    location: str = ""
    utc_offset_minutes: int | None = None
    languages: frozenset[str] = frozenset()
    job_level: int = 0  # 0 = unknown
    goals: frozenset[str] = frozenset()
    availability: tuple[Slot, ...] = ()
    gender: str = ""
    cultural_background: str = ""
    demographic_opt_in: bool = False
    preferred_mentors: tuple[str, ...] = ()  # a mentee's ranked choices (participant ids)
    group: str = ""  # cohort or other subset a bulk run can be limited to
    free_slots: int = 0  # a mentor's remaining capacity


@dataclass(frozen=True, slots=True)
class CriterionSpec:
    kind: Kind
    weight: float = 1.0
    hard: bool = False
    # SENIORITY
    min_level_gap: int = 1
    max_level_gap: int = 4
    allow_reverse: bool = False
    # DEPARTMENT
    prefer_same_department: bool = False
    # TIMEZONE
    max_timezone_hours: float = 3.0
    # AVAILABILITY
    min_overlap_minutes: int = 60


@dataclass(frozen=True, slots=True)
class MatchingConfig:
    criteria: tuple[CriterionSpec, ...] = (CriterionSpec(Kind.SKILLS, weight=5.0),)
    # Below this score leaving a mentee unmatched beats a bad match.
    min_score: float = 0.0
    reporting_rule: ReportingRule = ReportingRule.MANAGER_CHAIN
    # How many of a mentee's best mentors a bulk run considers.
    candidates_per_mentee: int = 20


@dataclass(frozen=True, slots=True)
class Constraints:
    """Facts behind the always-hard rules."""

    excluded: frozenset[tuple[str, str]] = frozenset()  # (mentor_id, mentee_id)
    manager_of: dict[str, str] = field(default_factory=dict)  # HR id -> manager's HR id


@dataclass(frozen=True, slots=True)
class CriterionResult:
    kind: str
    score: float
    weight: float
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    score: float
    breakdown: tuple[CriterionResult, ...]
    # Why the pair is not allowed (hard criteria failed, or always-hard rules); empty if allowed.
    violations: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.violations
