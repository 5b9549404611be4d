"""One fold step's working states: what a batch of events changes, before it is written."""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Callable

from services.analytics import org_state, program_state
from services.analytics.program_state import State
from services.common.pb.mentoring.v1.events_pb2 import Event

Load = Callable[[str], State]


class FoldStep:
    """The states a step changes, as private copies of the stored values.

    The tables change only when the step writes these back whole, so an event whose fold
    raises leaves no trace: its state is rebuilt from the stored value and the events the step
    folded into it before, and the caller dead-letters the event.
    """

    def __init__(self, load_program: Load, load_organisation: Load) -> None:
        self._load = {False: load_program, True: load_organisation}
        self.programs: dict[str, State] = {}
        self.organisations: dict[str, State] = {}
        self._folded: defaultdict[str, list[Event]] = defaultdict(list)

    def state(self, key: str, for_organisation: bool) -> State:
        states = self.organisations if for_organisation else self.programs
        if key not in states:
            # A copy, never the stored object itself; pickle copies plain data fastest.
            stored = self._load[for_organisation](key)
            states[key] = pickle.loads(pickle.dumps(stored, pickle.HIGHEST_PROTOCOL))
        return states[key]

    def apply(self, key: str, for_organisation: bool, event: Event) -> None:
        """Fold the event into the key's state; if that raises, the state is as before."""
        fold = org_state.apply if for_organisation else program_state.apply
        try:
            fold(self.state(key, for_organisation), event)
        except Exception:
            (self.organisations if for_organisation else self.programs).pop(key)
            state = self.state(key, for_organisation)
            for earlier in self._folded[key]:
                fold(state, earlier)
            raise
        self._folded[key].append(event)
