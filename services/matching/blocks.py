"""The always-hard rules that depend on more than the two people: exclusions and reporting
lines, read fresh from the store for the mentees at hand. Blocking (storage): call through
storage.run_sync.

The live index (live.py) encodes mentors without them, so an exclusion or a new manager needs
no re-encoding: rules only ever block, so what the index finds is a superset of the allowed
pairs, in the same order, and dropping what these rules block is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.matching.documents import Exclusion, ReportingLine
from services.matching.domain.criteria import reporting_line
from services.matching.domain.model import Constraints, Person, ReportingRule


class Blocks:
    """Exclusions of some mentees and the reporting lines of whoever is checked against them;
    the lines are read as people are checked (`learn`), a batch at a time."""

    def __init__(
        self,
        organization_id: str,
        program_id: str,
        rule: ReportingRule,
        mentees: Sequence[Person],
    ) -> None:
        self._organization_id = organization_id
        self._rule = rule
        ids = [m.participant_id for m in mentees]
        self._excluded = {
            (e.mentor_id, e.mentee_id)
            for e in Exclusion.objects(
                organization_id=organization_id, program_id=program_id, mentee_id__in=ids
            ).only("mentor_id", "mentee_id")
        }
        self._manager_of: dict[str, str] = {}
        self._asked: set[str] = set()
        self.learn(mentees)

    def learn(self, people: Iterable[Person]) -> None:
        """Read the reporting lines `allowed` needs for these people: their manager when the
        profile names none, and their manager's manager (criteria.managers)."""
        people = list(people)
        self._read(p.hr_person_id for p in people if p.hr_person_id and not p.manager_id)
        self._read(
            manager
            for p in people
            if (manager := p.manager_id or self._manager_of.get(p.hr_person_id, ""))
        )

    def _read(self, hr_ids: Iterable[str]) -> None:
        wanted = sorted(set(hr_ids) - self._asked)
        if not wanted:
            return
        self._asked.update(wanted)
        for line in ReportingLine.objects(
            organization_id=self._organization_id, hr_person_id__in=wanted
        ).only("hr_person_id", "manager_id"):
            self._manager_of[line.hr_person_id] = line.manager_id

    def allowed(self, mentor: Person, mentee: Person) -> bool:
        """Neither excluded nor in one reporting line (both people learnt)."""
        if (mentor.participant_id, mentee.participant_id) in self._excluded:
            return False
        return reporting_line(mentor, mentee, self._manager_of, self._rule) is None

    def constraints(self) -> Constraints:
        """What was read, as the engine's Constraints (for criteria.evaluate's explanations)."""
        return Constraints(excluded=frozenset(self._excluded), manager_of=self._manager_of)
