"""Realistic synthetic organisations for the matching benchmarks (seeded, no I/O).

`organisation(n_mentees, seed)` builds one company-wide mentoring program:

- a skill taxonomy of 60 skills in 10 families (a root per family, leaves under it, a few
  grandchildren so that "ancestor at depth 2" occurs) with synonyms; some people write a skill
  by its synonym (the matching engine canonicalises through the taxonomy);
- skill popularity with a Zipf skew (exponent 1.1 over a random permutation of the skills) and
  people's skills clustered in one or two "home" families;
- an employee population with a reporting hierarchy: job levels 1..8 (a pyramid), departments
  of skewed sizes, each employee's manager one or two levels up in the same department, and the
  managers' chain as `Constraints.manager_of` (so reporting-line rules bite: a mentee's manager
  or skip-level manager is often enrolled as a mentor);
- locations with their UTC offsets and languages, weekly availability slots in local working
  hours (converted to UTC minutes of the week), mentee goals and mentor help areas,
  demographics (mentees opt in now and then), ranked mentor choices for some mentees, and a
  few "do not match again" exclusions;
- mentors at 1 per 4 mentees with capacity 1-4 (so capacity is scarce: ~2.5 slots per 4
  mentees and the assignment must choose who is matched).

The program's configuration weights skills most, with goals, seniority, availability,
department (prefer another department) and demographics as soft criteria, the mentee's own
choices as a soft bonus, and hard filters on timezone (at most 6 hours apart) and a shared
language; the reporting line rule is the default manager chain.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from services.matching.domain.model import (
    MENTEE,
    MENTOR,
    Constraints,
    CriterionSpec,
    Kind,
    MatchingConfig,
    Person,
    ReportingRule,
    Slot,
)
from services.matching.domain.taxonomy import Taxonomy

__all__ = ["FAMILIES", "SyntheticOrg", "default_config", "organisation", "taxonomy"]

# family root -> leaves; a leaf written "leaf>child" also gets a grandchild under it.
FAMILIES: dict[str, tuple[str, ...]] = {
    "software engineering": (
        "python>django",
        "java",
        "javascript>react",
        "go",
        "testing",
        "system design",
    ),
    "data": ("sql", "machine learning>deep learning", "statistics", "data visualisation"),
    "cloud": ("kubernetes", "aws", "terraform", "observability", "security"),
    "product": ("product discovery", "roadmapping", "user research", "analytics"),
    "design": ("ux design", "visual design", "design systems", "prototyping"),
    "leadership": (
        "people management>hiring",
        "coaching",
        "strategy",
        "change management",
        "delegation",
    ),
    "communication": ("public speaking", "writing", "negotiation", "stakeholder management"),
    "finance": ("budgeting", "forecasting", "accounting", "procurement"),
    "sales": ("account management", "prospecting", "customer success", "pricing"),
    "operations": ("project management>agile", "process improvement", "supply chain", "legal"),
}

SYNONYMS: dict[str, str] = {
    "Py": "python",
    "JS": "javascript",
    "k8s": "kubernetes",
    "ML": "machine learning",
    "UX": "ux design",
    "PM": "project management",
    "Stats": "statistics",
    "dataviz": "data visualisation",
    "public-speaking": "public speaking",
    "Scrum": "agile",
}

DEPARTMENTS = (
    "engineering",
    "product",
    "sales",
    "marketing",
    "finance",
    "operations",
    "hr",
    "legal",
    "customer support",
    "data",
    "design",
    "it",
)
DEPARTMENT_WEIGHTS = (30, 8, 15, 8, 6, 8, 4, 2, 10, 5, 3, 5)

# city, UTC offset in minutes, main language, share of people there
LOCATIONS = (
    ("London", 0, "en", 14),
    ("Dublin", 0, "en", 4),
    ("Paris", 60, "fr", 6),
    ("Berlin", 60, "de", 7),
    ("Warsaw", 60, "pl", 5),
    ("Johannesburg", 120, "en", 2),
    ("Dubai", 240, "ar", 2),
    ("Bangalore", 330, "en", 12),
    ("Singapore", 480, "en", 5),
    ("Tokyo", 540, "ja", 3),
    ("Sydney", 600, "en", 3),
    ("Sao Paulo", -180, "pt", 5),
    ("New York", -300, "en", 14),
    ("Toronto", -300, "en", 4),
    ("Mexico City", -360, "es", 4),
    ("San Francisco", -480, "en", 10),
)

GOALS = (
    "career growth",
    "leadership",
    "technical depth",
    "networking",
    "work-life balance",
    "public speaking",
    "promotion",
    "cross-team exposure",
    "entrepreneurship",
    "returning to work",
)
GENDERS = ("female", "male", "non-binary")
BACKGROUNDS = ("a", "b", "c", "d", "e")
MINUTES_PER_WEEK = 7 * 24 * 60


@dataclass(frozen=True, slots=True)
class SyntheticOrg:
    mentees: list[Person]
    mentors: list[Person]
    taxonomy: Taxonomy
    config: MatchingConfig
    constraints: Constraints


def taxonomy() -> tuple[Taxonomy, list[str]]:
    """The skill taxonomy and its canonical skills (roots included), in a fixed order."""
    parents: dict[str, str | None] = {}
    for root, leaves in FAMILIES.items():
        parents[root] = None
        for leaf in leaves:
            name, _, child = leaf.partition(">")
            parents[name] = root
            if child:
                parents[child] = name
    return Taxonomy(parents, SYNONYMS), list(parents)


def default_config(candidates_per_mentee: int = 20) -> MatchingConfig:
    return MatchingConfig(
        criteria=(
            CriterionSpec(Kind.SKILLS, weight=5.0),
            CriterionSpec(Kind.GOALS, weight=2.0),
            CriterionSpec(Kind.SENIORITY, weight=2.0, min_level_gap=1, max_level_gap=3),
            CriterionSpec(Kind.TIMEZONE, weight=1.0, hard=True, max_timezone_hours=6.0),
            CriterionSpec(Kind.LANGUAGE, weight=0.0, hard=True),
            CriterionSpec(Kind.AVAILABILITY, weight=1.0, min_overlap_minutes=60),
            CriterionSpec(Kind.DEPARTMENT, weight=1.0, prefer_same_department=False),
            CriterionSpec(Kind.DEMOGRAPHICS, weight=1.0),
            CriterionSpec(Kind.MENTEE_CHOICE, weight=2.0),
        ),
        min_score=0.35,
        reporting_rule=ReportingRule.MANAGER_CHAIN,
        candidates_per_mentee=candidates_per_mentee,
    )


def organisation(
    n_mentees: int,
    seed: int = 0,
    *,
    mentors_per_mentee: float = 0.25,
    config: MatchingConfig | None = None,
) -> SyntheticOrg:
    """A program with n_mentees mentees and n_mentees * mentors_per_mentee mentors."""
    rng = random.Random(seed)
    tax, skills = taxonomy()
    n_mentors = max(1, round(n_mentees * mentors_per_mentee))
    n_people = n_mentees + n_mentors
    # Employees who are not enrolled (mostly managers) make up the rest of the company.
    n_employees = n_people + n_people // 4

    family_of = {s: (tax.ancestors(s) or (s,))[-1] for s in skills}
    families = list(FAMILIES)
    by_family: dict[str, list[str]] = {
        f: [s for s in skills if family_of[s] == f] for f in families
    }
    order = skills[:]
    rng.shuffle(order)
    popularity = {s: 1.0 / (rank + 1) ** 1.1 for rank, s in enumerate(order)}
    family_weight = {f: sum(popularity[s] for s in by_family[f]) for f in families}
    reverse_synonyms: dict[str, list[str]] = {}
    for alias, target in SYNONYMS.items():
        reverse_synonyms.setdefault(target, []).append(alias)

    def pick_skills(count: int) -> tuple[str, ...]:
        home = rng.choices(families, weights=[family_weight[f] for f in families], k=2)
        pool = by_family[home[0]] + (by_family[home[1]] if rng.random() < 0.4 else [])
        pool = list(dict.fromkeys(pool))
        chosen: list[str] = []
        weights = [popularity[s] for s in pool]
        while len(chosen) < min(count, len(pool)):
            s = rng.choices(pool, weights=weights)[0]
            if s not in chosen:
                chosen.append(s)
        # Now and then a skill is written by a synonym; the taxonomy canonicalises it.
        return tuple(
            rng.choice(reverse_synonyms[s]) if s in reverse_synonyms and rng.random() < 0.1 else s
            for s in chosen
        )

    # --- employees and the reporting hierarchy ---------------------------------------------
    level_weights = (30, 25, 18, 12, 7, 4, 2, 1)
    levels = rng.choices(range(1, 9), weights=level_weights, k=n_employees)
    departments = rng.choices(DEPARTMENTS, weights=DEPARTMENT_WEIGHTS, k=n_employees)
    hr_ids = [f"hr{i:07d}" for i in range(n_employees)]
    by_dept_level: dict[tuple[str, int], list[int]] = {}
    for i in range(n_employees):
        by_dept_level.setdefault((departments[i], levels[i]), []).append(i)
    manager_of: dict[str, str] = {}
    for i in range(n_employees):
        for up in (1, 2, 3, 4, 5, 6, 7):
            bosses = by_dept_level.get((departments[i], levels[i] + up))
            if bosses:
                # Few managers per level: the first twelfth of a level are the people managers.
                span = max(1, len(bosses) // 12)
                manager_of[hr_ids[i]] = hr_ids[bosses[rng.randrange(span)]]
                break

    # Mentors come from the senior end, mentees from the junior end; people managers are
    # over-represented among mentors, so a mentee's own manager is often a mentor.
    employees = list(range(n_employees))
    rng.shuffle(employees)
    employees.sort(key=lambda i: levels[i] + rng.random() * 3, reverse=True)
    mentor_pool = employees[: n_mentors * 3]
    rng.shuffle(mentor_pool)
    mentor_rows = mentor_pool[:n_mentors]
    taken = set(mentor_rows)
    mentee_rows = [i for i in reversed(employees) if i not in taken][:n_mentees]

    loc_weights = [w for *_, w in LOCATIONS]
    exclusions: set[tuple[str, str]] = set()

    def person(i: int, role: str, pid: str) -> Person:
        city, offset, lang, _ = rng.choices(LOCATIONS, weights=loc_weights)[0]
        known_location = rng.random() > 0.05
        languages = {lang, "en"} if rng.random() < 0.85 else {lang}
        if rng.random() < 0.1:
            languages.add(rng.choice(("es", "fr", "de", "hi", "zh")))
        if rng.random() < 0.03:
            languages = set()
        manager = manager_of.get(hr_ids[i], "")
        return Person(
            participant_id=pid,
            role=role,
            skills=pick_skills(rng.randint(3, 6) if role == MENTOR else rng.randint(1, 3)),
            hr_person_id=hr_ids[i],
            # Some HR feeds leave the manager off the profile: manager_of still knows it.
            manager_id=manager if rng.random() < 0.8 else "",
            department=departments[i] if rng.random() > 0.03 else "",
            location=city if known_location else "",
            utc_offset_minutes=offset if known_location or rng.random() < 0.5 else None,
            languages=frozenset(languages),
            job_level=levels[i] if rng.random() > 0.05 else 0,
            goals=frozenset(
                rng.sample(GOALS, rng.randint(2, 4) if role == MENTOR else rng.randint(1, 3))
            )
            if rng.random() > 0.1
            else frozenset(),
            availability=_availability(rng, offset) if rng.random() > 0.1 else (),
            gender=rng.choice(GENDERS) if rng.random() < 0.6 else "",
            cultural_background=rng.choice(BACKGROUNDS) if rng.random() < 0.4 else "",
            demographic_opt_in=role == MENTEE and rng.random() < 0.15,
            free_slots=rng.choices((1, 2, 3, 4), weights=(3, 4, 2, 1))[0] if role == MENTOR else 0,
        )

    mentors = [person(i, MENTOR, f"mentor-{n:06d}") for n, i in enumerate(mentor_rows)]
    mentees = [person(i, MENTEE, f"mentee-{n:06d}") for n, i in enumerate(mentee_rows)]

    # Ranked choices: ~10% of mentees pick 1-3 mentors who offer one of their skills.
    offering: dict[str, list[str]] = {}
    for m in mentors:
        for s in m.skills:
            offering.setdefault(tax.canonical(s), []).append(m.participant_id)
    with_choices: list[Person] = []
    for e in mentees:
        if rng.random() < 0.1:
            pool = offering.get(tax.canonical(e.skills[0]), [])
            if pool:
                picks = list(dict.fromkeys(rng.choices(pool, k=rng.randint(1, 3))))
                e = replace(e, preferred_mentors=tuple(picks))
        if rng.random() < 0.01:
            exclusions.add((rng.choice(mentors).participant_id, e.participant_id))
        with_choices.append(e)

    return SyntheticOrg(
        mentees=with_choices,
        mentors=mentors,
        taxonomy=tax,
        config=config or default_config(),
        constraints=Constraints(excluded=frozenset(exclusions), manager_of=manager_of),
    )


def _availability(rng: random.Random, offset_minutes: int) -> tuple[Slot, ...]:
    """1-4 weekly slots of 1-2 hours on weekdays, 9:00-18:00 local, as UTC minutes of week."""
    slots: list[Slot] = []
    for _ in range(rng.randint(1, 4)):
        day = rng.randrange(5)
        start_local = day * 1440 + 9 * 60 + rng.randrange(0, 8 * 60, 30)
        length = rng.choice((60, 60, 90, 120))
        start = (start_local - offset_minutes) % MINUTES_PER_WEEK
        end = start + length
        if end <= MINUTES_PER_WEEK:
            slots.append(Slot(start, end))
        else:  # wraps past the end of the week: split it
            slots.append(Slot(start, MINUTES_PER_WEEK))
            slots.append(Slot(0, end - MINUTES_PER_WEEK))
    return tuple(slots)
