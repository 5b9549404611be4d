"""A skill taxonomy: canonical names, synonyms and a parent tree. Pure: no I/O.

Skills are compared on canonical names: lower-case, runs of whitespace folded to one space,
then a synonym resolved to the skill it names ("Py" -> "python"). A skill the taxonomy does
not know is its own canonical name and has no parent.

relatedness(a, b) is what the SKILLS criterion scores (see model.py): 1.0 for the same skill,
0.5 when one is an ancestor of the other at any depth, 0.25 for siblings (same non-None
parent), else 0.0. It is called once per (offered, sought) skill pair for every pair of
people, so lookups go through a per-instance cache of (canonical, parent, ancestor set).
"""

from __future__ import annotations

from collections.abc import Mapping

# Upper bound on the relatedness lookup cache; cleared (not evicted one by one) when full, so
# a long-lived taxonomy fed arbitrary strings cannot grow without bound.
_CACHE_LIMIT = 1 << 16

_NO_ANCESTORS: frozenset[str] = frozenset()

# (canonical name, canonical parent or None, canonical ancestors as a set)
_Info = tuple[str, str | None, frozenset[str]]


def _normalise(skill: str) -> str:
    return " ".join(skill.lower().split())


class Taxonomy:
    """Skills, their synonyms and their parents.

    parents maps a skill to its parent skill (None or "" for a root); synonyms maps an
    alternative name to its canonical skill name. Names on both sides are normalised
    (case, whitespace) and a parent given by a synonym is resolved to its canonical skill.

    Raises ValueError, naming the skill, for: a cycle in parents (including a skill being its
    own parent), a synonym pointing to another synonym (synonyms are one level), a name that is
    both a synonym and a skill with a parent entry, conflicting entries that normalise to the
    same name, and empty names.
    """

    __slots__ = ("_ancestor_sets", "_ancestors", "_info", "_parent", "_synonyms")

    def __init__(
        self,
        parents: Mapping[str, str | None] | None = None,
        synonyms: Mapping[str, str] | None = None,
    ) -> None:
        self._synonyms = _build_synonyms(synonyms or {})
        self._parent = _build_parents(parents or {}, self._synonyms)
        self._ancestors = _build_ancestors(self._parent)
        self._ancestor_sets = {skill: frozenset(chain) for skill, chain in self._ancestors.items()}
        self._info: dict[str, _Info] = {}

    def canonical(self, skill: str) -> str:
        """Lower-case, whitespace folded, synonym resolved to its canonical skill."""
        name = _normalise(skill)
        return self._synonyms.get(name, name)

    def ancestors(self, skill: str) -> tuple[str, ...]:
        """Canonical ancestors, nearest first; () for a root or unknown skill."""
        return self._ancestors.get(self.canonical(skill), ())

    def parent(self, skill: str) -> str | None:
        return self._parent.get(self.canonical(skill))

    def relatedness(self, a: str, b: str) -> float:
        """1.0 same skill, 0.5 ancestor/descendant (any depth), 0.25 siblings, else 0.0.

        Compared on canonical names, so it is symmetric and accepts raw names too.
        """
        if a == b:
            return 1.0
        canon_a, parent_a, ancestors_a = self._lookup(a)
        canon_b, parent_b, ancestors_b = self._lookup(b)
        if canon_a == canon_b:
            return 1.0
        if canon_a in ancestors_b or canon_b in ancestors_a:
            return 0.5
        if parent_a is not None and parent_a == parent_b:
            return 0.25
        return 0.0

    def _lookup(self, skill: str) -> _Info:
        info = self._info.get(skill)
        if info is None:
            canon = self.canonical(skill)
            info = (
                canon,
                self._parent.get(canon),
                self._ancestor_sets.get(canon, _NO_ANCESTORS),
            )
            if len(self._info) >= _CACHE_LIMIT:
                self._info.clear()
            self._info[skill] = info
        return info


def _build_synonyms(synonyms: Mapping[str, str]) -> dict[str, str]:
    resolved: dict[str, str] = {}
    for raw_alias, raw_target in synonyms.items():
        alias, target = _normalise(raw_alias), _normalise(raw_target)
        if not alias or not target:
            raise ValueError(f"empty skill name in synonym {raw_alias!r} -> {raw_target!r}")
        if alias == target:
            continue  # "Python" -> "python": normalisation already does it
        previous = resolved.get(alias)
        if previous is not None and previous != target:
            raise ValueError(
                f"synonym {alias!r} points to both {previous!r} and {target!r}",
            )
        resolved[alias] = target
    for alias, target in resolved.items():
        if target in resolved:
            raise ValueError(
                f"synonym {alias!r} points to {target!r}, which is itself a synonym of "
                f"{resolved[target]!r}; point it at the canonical skill",
            )
    return resolved


def _build_parents(
    parents: Mapping[str, str | None], synonyms: Mapping[str, str]
) -> dict[str, str | None]:
    parent_of: dict[str, str | None] = {}
    for raw_skill, raw_parent in parents.items():
        skill = _normalise(raw_skill)
        if not skill:
            raise ValueError(f"empty skill name {raw_skill!r} in the taxonomy")
        if skill in synonyms:
            raise ValueError(
                f"skill {skill!r} is also a synonym of {synonyms[skill]!r}; "
                "give the parent of the canonical skill instead",
            )
        parent: str | None = None
        if raw_parent is not None:
            name = _normalise(raw_parent)
            parent = synonyms.get(name, name) if name else None
        if skill in parent_of and parent_of[skill] != parent:
            raise ValueError(
                f"skill {skill!r} has two parents: {parent_of[skill]!r} and {parent!r}",
            )
        parent_of[skill] = parent
    return parent_of


def _build_ancestors(parent_of: Mapping[str, str | None]) -> dict[str, tuple[str, ...]]:
    ancestors: dict[str, tuple[str, ...]] = {}
    for skill in parent_of:
        chain: list[str] = []
        seen = {skill}
        current = parent_of[skill]
        while current is not None:
            if current in ancestors:
                # Already known to be acyclic, and it cannot lead back here (that cycle would
                # have been found when it was walked).
                chain.append(current)
                chain.extend(ancestors[current])
                break
            if current in seen:
                path = " -> ".join([skill, *chain, current])
                raise ValueError(f"cycle in the skill taxonomy at {current!r}: {path}")
            chain.append(current)
            seen.add(current)
            current = parent_of.get(current)
        ancestors[skill] = tuple(chain)
    return ancestors


EMPTY_TAXONOMY = Taxonomy()
