"""A state stored as many small values: a summary, and one value per entity.

A program's state used to be one table value that grew with its people, until Kafka refused it
(1 MB, at about 6,000 people). Now every participant, relationship, goal, applicant and
(cohort, day) of counters is a value of its own, keyed `<state key>|<kind>|<id>`, and the
summary keeps only what does not grow with the program: its event count, cadence and
campaigns. The fold functions still see one mapping: `state["people"]` is a view that loads,
and a fold step writes back, only the entities an event touches.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from dataclasses import dataclass, field
from typing import Any

from services.analytics import org_state, program_state, stocks

State = dict[str, Any]

SEPARATOR = "|"
PROGRAM_ENTITIES = frozenset(
    {"people", "relationships", "goals", "applicants", "unregistered_mentees", "days"}
)
ORGANISATION_ENTITIES = frozenset({"employees", "joined"})


def entity_kinds(for_organisation: bool) -> frozenset[str]:
    return ORGANISATION_ENTITIES if for_organisation else PROGRAM_ENTITIES


def new_summary(for_organisation: bool) -> State:
    """The summary of a state nothing was folded into yet: its fields but its entities."""
    new = org_state.new_state() if for_organisation else program_state.new_state()
    kinds = entity_kinds(for_organisation)
    return {name: value for name, value in new.items() if name not in kinds}


def entity_key(state_key: str, kind: str, entity_id: str) -> str:
    # State keys are `org/program` of checked ids, which never hold the separator.
    return f"{state_key}{SEPARATOR}{kind}{SEPARATOR}{entity_id}"


def split_entity_key(key: str) -> tuple[str, str, str]:
    state_key, kind, entity_id = key.split(SEPARATOR, 2)
    return state_key, kind, entity_id


def copied(value: Any) -> Any:
    # Plain data: a pickle round trip is the fastest deep copy.
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


class Index:
    """Every stored summary and entity of the states a worker holds: what folds load and
    readers scan, without going through the table. Values are the table's own objects."""

    def __init__(self) -> None:
        self.summaries: dict[str, State] = {}
        self._entities: dict[str, dict[str, dict[str, Any]]] = {}
        # Per program, its stock figures as its people and relationships stand.
        self._tallies: dict[str, stocks.Tallies] = {}

    def clear(self) -> None:
        self.summaries.clear()
        self._entities.clear()
        self._tallies.clear()

    def summary(self, state_key: str) -> State | None:
        return self.summaries.get(state_key)

    def kind(self, state_key: str, kind: str) -> dict[str, Any]:
        return self._entities.get(state_key, {}).get(kind, {})

    def entity(self, state_key: str, kind: str, entity_id: str) -> Any:
        return self.kind(state_key, kind).get(entity_id)

    def put(self, key: str, value: Any) -> None:
        """A table write (None: a removal), of a summary or an entity."""
        if SEPARATOR not in key:
            if value is None:
                self.summaries.pop(key, None)
            else:
                self.summaries[key] = value
            return
        state_key, kind, entity_id = split_entity_key(key)
        if value is None:
            old = self._entities.get(state_key, {}).get(kind, {}).pop(entity_id, None)
        else:
            entities = self._entities.setdefault(state_key, {}).setdefault(kind, {})
            old = entities.get(entity_id)
            entities[entity_id] = value
        if kind in stocks.TALLIED and (old is not None or value is not None):
            tallies = self._tallies.get(state_key)
            if tallies is None:
                tallies = self._tallies[state_key] = stocks.Tallies()
            tallies.replace(kind, old, value)

    def tally(self, state_key: str, cohort: str) -> stocks.Tally:
        tallies = self._tallies.get(state_key)
        return tallies.of(cohort) if tallies is not None else stocks.Tally()

    def stored(self, state_key: str, for_organisation: bool) -> StoredState:
        """The state as the KPI functions read it (a new one's, when nothing is stored)."""
        summary = self.summary(state_key) or new_summary(for_organisation)
        return StoredState(summary, self, state_key, entity_kinds(for_organisation))

    def size(self, state_key: str) -> int:
        return sum(len(entities) for entities in self._entities.get(state_key, {}).values())


class Entities(Mapping[str, Any]):
    """Read-only view of one kind of a stored state's entities, for KPI arithmetic."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, entity_id: str) -> Any:
        return self._values[entity_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    # The dict's own views: KPI arithmetic walks every entity of a program.
    def values(self) -> ValuesView[Any]:
        return self._values.values()

    def items(self) -> ItemsView[str, Any]:
        return self._values.items()


class StoredState(Mapping[str, Any]):
    """A stored state as the mapping the KPI functions read: the summary's fields, and views
    over its entities."""

    def __init__(self, summary: State, index: Index, state_key: str, kinds: frozenset[str]):
        self._summary = summary
        self._index = index
        self._key = state_key
        self._kinds = kinds

    def __getitem__(self, name: str) -> Any:
        if name in self._kinds:
            return Entities(self._index.kind(self._key, name))
        return self._summary[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._summary
        yield from self._kinds

    def __len__(self) -> int:
        return len(self._summary) + len(self._kinds)

    def tally(self, cohort: str) -> stocks.Tally:
        """The stock figures' tally, kept as the entities were written (stocks.Tallied)."""
        return self._index.tally(self._key, cohort)


@dataclass
class Cell:
    """An entity's working value in a step; None when it does not exist (or was removed)."""

    value: Any
    stored: Any


@dataclass
class Working:
    """One state's working copies in a step."""

    summary: State
    stored_summary: State | None
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)


class WorkingState(MutableMapping[str, Any]):
    """The mapping a fold function changes: one state as of the message being folded."""

    def __init__(self, step: Working, kinds: frozenset[str], load: Callable[..., Cell]) -> None:
        self._step = step
        self._kinds = kinds
        self._load = load

    def __getitem__(self, name: str) -> Any:
        if name in self._kinds:
            return WorkingEntities(name, self._load)
        return self._step.summary[name]

    def __setitem__(self, name: str, value: Any) -> None:
        if name in self._kinds:
            raise TypeError(f"{name} is a kind of entity, not a value")
        self._step.summary[name] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError("a state's fields are never removed")

    def __iter__(self) -> Iterator[str]:
        yield from self._step.summary
        yield from self._kinds

    def __len__(self) -> int:
        return len(self._step.summary) + len(self._kinds)


_MISSING = object()


class WorkingEntities:
    """The entities of one kind, as a dict the fold functions use (get, in, [], setdefault,
    pop); each entity is loaded from the store the first time a step touches it."""

    def __init__(self, kind: str, load: Callable[[str, str], Cell]) -> None:
        self._kind = kind
        self._load = load

    def get(self, entity_id: str, default: Any = None) -> Any:
        value = self._load(self._kind, entity_id).value
        return default if value is None else value

    def __contains__(self, entity_id: object) -> bool:
        return self._load(self._kind, str(entity_id)).value is not None

    def __getitem__(self, entity_id: str) -> Any:
        value = self._load(self._kind, entity_id).value
        if value is None:
            raise KeyError(entity_id)
        return value

    def __setitem__(self, entity_id: str, value: Any) -> None:
        self._load(self._kind, entity_id).value = value

    def setdefault(self, entity_id: str, default: Any) -> Any:
        cell = self._load(self._kind, entity_id)
        if cell.value is None:
            cell.value = default
        return cell.value

    def pop(self, entity_id: str, default: Any = _MISSING) -> Any:
        cell = self._load(self._kind, entity_id)
        value, cell.value = cell.value, None
        if value is None:
            if default is _MISSING:
                raise KeyError(entity_id)
            return default
        return value
