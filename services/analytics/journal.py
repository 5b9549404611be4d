"""How a fold step's writes are committed all or nothing. Pure: no I/O.

A step changes many values of the state table, each its own changelog record. A worker that
dies part way through leaves some written and others not, and the events are delivered again;
folding them again onto half the step would count some twice. So a step first writes what it
changes into journal values, then a marker naming them, then the values themselves. Records of
one changelog partition are written in order, so what a crash leaves is a prefix: with the
marker stored, the journal holds every value of the step (and is applied again when the state
is loaded); without it, none of the step's own values was written. The marker's offset is the
last ingest message the state holds: anything up to it is not folded again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from services.analytics.fold_step import Write

PREFIX = "~"
JOURNAL = "~journal"
SEEN = "~seen"
# Well under Kafka's 1 MB message, however large single values are (each is at most an event).
CHUNK_BYTES = 256_000
# Event ids per seen-events value.
SEEN_IDS_PER_VALUE = 2_000


def is_bookkeeping(key: str) -> bool:
    """Journal and seen-event values, as opposed to summaries and entities."""
    return key.startswith(PREFIX)


def marker_key(partition: int) -> str:
    return f"{JOURNAL}:{partition}"


def chunk_key(partition: int, chunk: int) -> str:
    return f"{JOURNAL}:{partition}:{chunk}"


def seen_key(partition: int, first_offset: int, chunk: int) -> str:
    return f"{SEEN}:{partition}:{first_offset}:{chunk}"


def seen_partition(key: str) -> int:
    return int(key.split(":")[1])


def step_records(
    partition: int,
    messages: tuple[int, int],
    folded: tuple[float, list[str]],
    writes: list[Write],
    replay: list[Write],
) -> Iterator[tuple[str, Any]]:
    """Every record a step stores, in order (None: a removal). First the values of a journal
    found when loading, which this step's journal overwrites; then the ids of the events it
    folded, its journal and marker, and only then its values."""
    first_offset, last_offset = messages
    newest, ids = folded
    for write in replay:
        yield write.key, write.value
    for chunk, start in enumerate(range(0, len(ids), SEEN_IDS_PER_VALUE)):
        yield (
            seen_key(partition, first_offset, chunk),
            [newest, ids[start : start + SEEN_IDS_PER_VALUE]],
        )
    chunks = 0
    batch: list[list[Any]] = []
    size = 0
    for write in writes:
        batch.append([write.key, write.value])
        size += len(write.key) + len(json.dumps(write.value))
        if size >= CHUNK_BYTES:
            yield chunk_key(partition, chunks), [last_offset, batch]
            chunks, batch, size = chunks + 1, [], 0
    if batch:
        yield chunk_key(partition, chunks), [last_offset, batch]
        chunks += 1
    yield marker_key(partition), [last_offset, chunks]
    for write in writes:
        yield write.key, write.value


@dataclass(frozen=True)
class Committed:
    """A partition's last committed step: the last offset it folded, and its values."""

    last_offset: int
    writes: list[Write]


@dataclass
class Loaded:
    """A table's items, sorted out: summaries and entities as the last committed steps left
    them, the event ids remembered (newest event time, key, ids; oldest first), and each
    partition's last committed step."""

    values: dict[str, Any] = field(default_factory=dict)
    seen: list[tuple[float, str, list[str]]] = field(default_factory=list)
    committed: dict[int, Committed] = field(default_factory=dict)


def load(items: Iterable[tuple[str, Any]]) -> Loaded:
    loaded = Loaded()
    journal: dict[str, Any] = {}
    for key, value in items:
        if key.startswith(SEEN + ":"):
            loaded.seen.append((value[0], key, value[1]))
        elif key.startswith(JOURNAL + ":"):
            journal[key] = value
        else:
            loaded.values[key] = value
    loaded.seen.sort()
    loaded.committed = _committed(journal)
    for step in loaded.committed.values():
        for write in step.writes:
            if write.value is None:
                loaded.values.pop(write.key, None)
            else:
                loaded.values[write.key] = write.value
    return loaded


def _committed(journal: dict[str, Any]) -> dict[int, Committed]:
    found: dict[int, Committed] = {}
    for key, (last_offset, chunks) in journal.items():
        parts = key.split(":")
        if len(parts) != 2:
            continue
        partition = int(parts[1])
        writes: list[Write] = []
        for chunk in range(chunks):
            stored = journal.get(chunk_key(partition, chunk))
            # A chunk of a later step that died before its marker: this step's values were
            # all written before that step began, and its own are not.
            if stored is None or stored[0] != last_offset:
                writes = []
                break
            writes.extend(Write(key, value) for key, value in stored[1])
        found[partition] = Committed(last_offset, writes)
    return found
