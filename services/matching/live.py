"""Each program's mentors with free capacity, encoded for search once and kept up to date in
place: what RecommendMentors and the continuous planner search, instead of loading the whole
pool and encoding it on every call. Blocking (storage): call through storage.run_sync.

Coherence across workers: every change to a mentor commits with a stamp of the program's next
revision (pool.next_revision), whoever makes it (any worker's consumer, a gRPC call, the expiry
task). Before each use a process reads the program's revision (one lookup); when it moved, it
reads the mentors stamped since and applies them. A worker whose consumer never sees the
program's events so answers from the same state a full load would.

Layout: a base CandidateIndex over the free mentors when it was built, from which mentors who
filled up, left or changed are retired (CandidateIndex.retire), and a small delta index over
those who joined, changed or came back since. Scores are per pair, so the best of each merged by
(score desc, mentor id) is what one index over all of them ranks. Once retired and delta
outgrow a share of the base, a new base is built on a background thread and swapped in.

Exclusions and reporting lines are left out of the index (blocks.py reads them fresh): they
only block, so searching on until enough candidates pass is exact.

Memory: at most MAX_PROGRAMS programs per process (the least recently used is dropped), each
O(its mentors).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import mongoengine

from services.common import clock
from services.common.api import matching_pb2
from services.matching import configuration, pool
from services.matching.blocks import Blocks
from services.matching.documents import PoolMember, SkillTaxonomy
from services.matching.domain.candidates import CandidateIndex
from services.matching.domain.model import MatchingConfig, Person
from services.matching.domain.taxonomy import Taxonomy
from services.matching.profiles import person

MAX_PROGRAMS = 32
# A new base once retired + delta mentors exceed this share of the base (or COMPACT_MIN).
COMPACT_SHARE = 0.25
COMPACT_MIN = 256


@dataclass(slots=True)
class Mentor:
    """A mentor with free capacity as the index holds them."""

    person: Person  # free_slots as stored now (changes in place, without re-encoding)
    name: str
    key: Any  # the document id (Pool.keys)
    generation: int  # bumped when what the search sees changes
    # The stored fields `person` and `name` come from besides the free slots (see _source).
    source: tuple[Any, ...] = ()


class LiveProgram:
    """One program's free mentors, searchable; `lock` guards every use (a CandidateIndex's
    caches are not thread-safe)."""

    def __init__(
        self, organization_id: str, program_id: str, config: MatchingConfig, taxonomy: Taxonomy
    ) -> None:
        self.organization_id = organization_id
        self.program_id = program_id
        self.config = config
        self.taxonomy = taxonomy
        self.lock = threading.RLock()
        self.alive: dict[str, Mentor] = {}
        # Mentors who joined, came back, changed or got more free slots since the continuous
        # planner last looked (arrivals.py drains it).
        self.gained: set[str] = set()
        # The continuous planner's own state for this program (arrivals.py).
        self.planner_state: Any = None
        self._revision = -1
        self._generation = 0
        self._base = CandidateIndex([], config, taxonomy)
        self._base_generation: dict[str, int] = {}
        self._base_position: dict[str, int] = {}
        self._retired: set[str] = set()
        self._delta: dict[str, Person] = {}
        self._delta_index: CandidateIndex | None = None
        self._building = False

    # --- keeping up with the store ---------------------------------------------------------

    def sync(self) -> None:
        """Apply what changed in the store since the last look (a full load the first time)."""
        current = pool.current_revision(self.organization_id, self.program_id)
        if self._revision >= 0 and current == self._revision:
            return
        if self._revision < 0 or current < self._revision:
            self._load(current)
            return
        # Most changes to a mentor only move their free slots (a proposal, a release): those
        # are applied from the stored fields as they are, without building the document or
        # decoding the profile again; the others are read whole.
        changed = PoolMember.objects(
            organization_id=self.organization_id,
            program_id=self.program_id,
            revision__gt=self._revision,
            revision__lte=current,
        ).only(*SOURCE_FIELDS, "role", "free_slots", "withdrawn")
        whole = [raw["_id"] for raw in changed.as_pymongo() if not self._slots_moved(raw)]
        if whole:
            for doc in PoolMember.objects(pk__in=whole):
                self._apply(doc)
        self._revision = current
        if self._needs_compaction() and not self._building:
            self._building = True
            self.start_compaction()

    def _load(self, revision: int) -> None:
        # Read after the revision: every change stamped up to it is visible; later ones are
        # read again by the next sync.
        docs = PoolMember.objects(
            organization_id=self.organization_id,
            program_id=self.program_id,
            role="mentor",
            withdrawn__ne=True,
            free_slots__gt=0,
        )
        self.alive = {}
        for doc in docs:
            self._generation += 1
            self.alive[doc.participant_id] = Mentor(
                person(doc, self.taxonomy),
                doc.display_name or "",
                doc.pk,
                self._generation,
                _stored_source(doc),
            )
        self.gained = set(self.alive)
        self._revision = revision
        self._rebase({pid: (m.person, m.generation) for pid, m in self.alive.items()})

    def _slots_moved(self, raw: dict[str, Any]) -> bool:
        """Apply a changed mentor's stored fields if only their free slots moved (or they no
        longer have any, or left); False when they must be read whole."""
        if raw.get("role") != "mentor":
            return True
        pid = raw.get("participant_id", "")
        if raw.get("withdrawn") or raw.get("free_slots", 0) <= 0:
            self._drop(pid)
            return True
        held = self.alive.get(pid)
        fields = (raw.get("display_name"), raw.get("skills"), raw.get("profile"))
        if held is None or held.source != _source(*fields, raw.get("cohort_id")):
            return False
        free = raw["free_slots"]
        if free > held.person.free_slots:
            self.gained.add(pid)
        held.person = replace(held.person, free_slots=free)
        return True

    def _apply(self, doc: PoolMember) -> None:
        pid = doc.participant_id
        if doc.role != "mentor":
            return
        if doc.withdrawn or doc.free_slots <= 0:
            self._drop(pid)
            return
        found = person(doc, self.taxonomy)
        old = self.alive.get(pid)
        if old is not None:
            old.name = doc.display_name or ""
            old.source = _stored_source(doc)
            if replace(old.person, free_slots=found.free_slots) == found:
                if found.free_slots > old.person.free_slots:
                    self.gained.add(pid)
                old.person = found  # only the free slots moved: nothing to encode
                return
        self._generation += 1
        self.alive[pid] = Mentor(
            found, doc.display_name or "", doc.pk, self._generation, _stored_source(doc)
        )
        self.gained.add(pid)
        self._retire(pid)
        self._delta[pid] = found
        self._delta_index = None

    def _drop(self, pid: str) -> None:
        self.alive.pop(pid, None)
        self.gained.discard(pid)
        self._retire(pid)
        if self._delta.pop(pid, None) is not None:
            self._delta_index = None

    def _retire(self, pid: str) -> None:
        position = self._base_position.get(pid)
        if position is not None and pid not in self._retired:
            self._base.retire([position])
            self._retired.add(pid)

    def _needs_compaction(self) -> bool:
        stale = len(self._retired) + len(self._delta)
        return stale > max(COMPACT_MIN, COMPACT_SHARE * self._base.n_mentors)

    def start_compaction(self) -> None:
        """Compact on a background thread: searches meanwhile use the patched base."""
        threading.Thread(target=self.compact, name="live-index", daemon=True).start()

    def compact(self) -> None:
        """Encode a new base over the free mentors (outside the lock: searches go on with the
        old one) and swap it in, retiring and adding what changed meanwhile."""
        try:
            with self.lock:
                snapshot = {pid: (m.person, m.generation) for pid, m in self.alive.items()}
            index = CandidateIndex([p for p, _ in snapshot.values()], self.config, self.taxonomy)
            with self.lock:
                self._rebase(snapshot, index)
        finally:
            self._building = False

    def _rebase(
        self, snapshot: dict[str, tuple[Person, int]], index: CandidateIndex | None = None
    ) -> None:
        if index is None:
            index = CandidateIndex([p for p, _ in snapshot.values()], self.config, self.taxonomy)
        self._base = index
        self._base_generation = {pid: g for pid, (_, g) in snapshot.items()}
        self._base_position = {pid: j for j, pid in enumerate(index.mentor_ids)}
        self._retired = set()
        stale = [
            pid
            for pid, g in self._base_generation.items()
            if (m := self.alive.get(pid)) is None or m.generation != g
        ]
        if stale:
            index.retire(self._base_position[pid] for pid in stale)
            self._retired.update(stale)
        self._delta = {
            pid: m.person
            for pid, m in self.alive.items()
            if self._base_generation.get(pid) != m.generation
        }
        self._delta_index = None

    # --- search ----------------------------------------------------------------------------

    def _segments(self) -> list[CandidateIndex]:
        if self._delta and self._delta_index is None:
            self._delta_index = CandidateIndex(
                list(self._delta.values()), self.config, self.taxonomy
            )
        found = [self._base] if self._base.n_mentors > len(self._retired) else []
        if self._delta_index is not None and self._delta:
            found.append(self._delta_index)
        return found

    def top(self, mentee: Person, k: int, blocks: Blocks) -> list[tuple[Mentor, float]]:
        """The mentee's k best allowed mentors scoring above 0, best first (ties by id): what
        planner.ranked gives over one index of every free mentor with the full constraints."""
        if k <= 0:
            return []
        want = k + 8
        while True:
            found, exhausted = self._merged(mentee, want)
            blocks.learn(m.person for m, _ in found)
            passed = [(m, s) for m, s in found if s > 0 and blocks.allowed(m.person, mentee)]
            if len(passed) >= k or exhausted or (found and found[-1][1] <= 0):
                return passed[:k]
            want *= 4

    def _merged(self, mentee: Person, want: int) -> tuple[list[tuple[Mentor, float]], bool]:
        merged: list[tuple[str, float]] = []
        exhausted = True
        for index in self._segments():
            got = index.top(mentee, want)
            exhausted &= len(got) < want
            merged += got
        merged.sort(key=lambda c: (-c[1], c[0]))
        return [(self.alive[pid], s) for pid, s in merged[:want]], exhausted

    def candidates(
        self, mentees: Sequence[Person], k: int, budget: int | None
    ) -> list[list[tuple[Mentor, float]]]:
        """Each mentee's best mentors (before blocks.py's rules), best first: at most k + 8 of
        them, each segment's search limited to `budget` candidates per sought skill (see
        CandidateIndex.top_many) when given."""
        want = k + 8
        lists: list[list[tuple[str, float]]] = [[] for _ in mentees]
        for index in self._segments():
            cut = budget if index is self._base else None
            pe, pm, score = index.top_many(mentees, want, budget=cut)
            ids = index.mentor_ids
            for e, j, s in zip(pe.tolist(), pm.tolist(), score.tolist(), strict=True):
                lists[e].append((ids[j], s))
        out = []
        for found in lists:
            found.sort(key=lambda c: (-c[1], c[0]))
            out.append([(self.alive[pid], s) for pid, s in found[:want]])
        return out


# What a mentor's Person and name are made of besides the free slots (profiles.person).
SOURCE_FIELDS = ("participant_id", "display_name", "skills", "profile", "cohort_id")


def _source(display_name: Any, skills: Any, profile: Any, cohort_id: Any) -> tuple[Any, ...]:
    """What a mentor's Person and name are made of besides the free slots: equal when those
    two can only differ in free slots."""
    return (display_name or "", tuple(skills or ()), bytes(profile or b""), cohort_id or "")


def _stored_source(doc: PoolMember) -> tuple[Any, ...]:
    return _source(doc.display_name, doc.skills, doc.profile, doc.cohort_id)


# --- the programs this process holds ---------------------------------------------------------

_programs: OrderedDict[tuple[str, str, str], tuple[tuple[Any, ...], LiveProgram]] = OrderedDict()
_registry_lock = threading.Lock()
_taxonomies: dict[bytes, Taxonomy] = {}


def _taxonomy_bytes(organization_id: str) -> bytes:
    stored = SkillTaxonomy.objects(organization_id=organization_id).only("taxonomy").first()
    return bytes(stored.taxonomy) if stored is not None else b""


def _taxonomy(raw: bytes) -> Taxonomy:
    found = _taxonomies.get(raw)
    if found is None:
        if len(_taxonomies) >= MAX_PROGRAMS:
            _taxonomies.clear()
        message = matching_pb2.SkillTaxonomy.FromString(raw)
        found = _taxonomies[raw] = configuration.engine_taxonomy(message)
    return found


def program(
    organization_id: str, program_id: str, settings: matching_pb2.MatchingConfig
) -> LiveProgram:
    """The program's live index (not synced: call sync under its lock). A new one when the
    matching settings or the taxonomy changed, or the day did (profiles' UTC offsets follow
    daylight saving by date)."""
    raw = _taxonomy_bytes(organization_id)
    signature = (
        settings.SerializeToString(deterministic=True),
        raw,
        clock.now().date(),
    )
    # The database's name too: one process may serve several (tests).
    key = (mongoengine.get_db().name, organization_id, program_id)
    with _registry_lock:
        held = _programs.get(key)
        if held is not None and held[0] == signature:
            _programs.move_to_end(key)
            return held[1]
        live = LiveProgram(
            organization_id, program_id, configuration.engine_config(settings), _taxonomy(raw)
        )
        _programs[key] = (signature, live)
        _programs.move_to_end(key)
        while len(_programs) > MAX_PROGRAMS:
            _programs.popitem(last=False)
        return live
