"""One fold step's working states: what a batch of events changes, before it is written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from services.analytics import org_state, program_state, sharded
from services.analytics.sharded import Cell, Working, WorkingState
from services.common.pb.mentoring.v1.events_pb2 import Event

LoadSummary = Callable[[str], sharded.State | None]
LoadEntity = Callable[[str, str, str], Any]


@dataclass(frozen=True)
class Write:
    """A table value the step changed: a state's summary, or one of its entities (None:
    removed)."""

    key: str
    value: Any


class FoldStep:
    """The states a step changes, as private copies of the stored values.

    Nothing stored changes until the caller writes back `writes()`, so an event whose fold
    raises leaves no trace: its state's copies are rebuilt from the stored values and the
    events the step folded into them before, and the caller dead-letters the event. Only the
    entities an event touches are loaded, so a step costs what its events do, whatever the
    size of their programs.
    """

    def __init__(self, load_summary: LoadSummary, load_entity: LoadEntity) -> None:
        self._load_summary = load_summary
        self._load_entity = load_entity
        self._states: dict[tuple[str, bool], Working] = {}
        self._folded: defaultdict[tuple[str, bool], list[Event]] = defaultdict(list)

    def apply(self, key: str, for_organisation: bool, event: Event) -> None:
        """Fold the event into the key's state; if that raises, the state is as before."""
        fold = org_state.apply if for_organisation else program_state.apply
        place = (key, for_organisation)
        try:
            fold(self._view(place), event)
        except Exception:
            del self._states[place]
            for earlier in self._folded[place]:
                fold(self._view(place), earlier)
            raise
        self._folded[place].append(event)

    def changed(self, for_organisation: bool) -> set[str]:
        return {key for key, organisation in self._states if organisation == for_organisation}

    def writes(self) -> Iterator[Write]:
        """The values the step changed."""
        for (key, _), working in self._states.items():
            if working.summary != working.stored_summary:
                yield Write(key, working.summary)
            for (kind, entity_id), cell in working.cells.items():
                if cell.value != cell.stored:
                    yield Write(sharded.entity_key(key, kind, entity_id), cell.value)

    # --- working copies ----------------------------------------------------------------

    def _view(self, place: tuple[str, bool]) -> WorkingState:
        key, for_organisation = place
        working = self._states.get(place)
        if working is None:
            stored = self._load_summary(key)
            summary = (
                sharded.new_summary(for_organisation) if stored is None else sharded.copied(stored)
            )
            working = Working(summary=summary, stored_summary=stored)
            self._states[place] = working

        def cell(kind: str, entity_id: str) -> Cell:
            found = working.cells.get((kind, entity_id))
            if found is None:
                stored = self._load_entity(key, kind, entity_id)
                found = Cell(value=sharded.copied(stored), stored=stored)
                working.cells[(kind, entity_id)] = found
            return found

        return WorkingState(working, sharded.entity_kinds(for_organisation), cell)
