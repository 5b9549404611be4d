"""CSV front-end for ``mentoring match solve``.

Reads ``pairs.csv`` (``mentee_id,mentor_id,score``) and ``capacities.csv``
(``mentor_id,capacity``), solves with :func:`solve_assignment` and writes ``matches.csv``
(``mentee_id,mentor_id,score``).

Input is validated strictly, and every problem is reported as a :class:`CsvFormatError`
pointing at the file, the 1-based physical line (the header is line 1) and the column,
because these files are typically produced by hand or by ad-hoc exports and a precise
location is what makes the error actionable. Columns may appear in any order; a UTF-8
BOM, whitespace around fields and fully blank lines are tolerated.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

from services.matching.domain.assignment import Assignment, Pair, solve_assignment

__all__ = [
    "CAPACITIES_COLUMNS",
    "MATCHES_COLUMNS",
    "PAIRS_COLUMNS",
    "CsvFormatError",
    "SolveSummary",
    "read_capacities",
    "read_pairs",
    "solve_files",
    "write_matches",
]

StrPath = str | os.PathLike[str]

PAIRS_COLUMNS = ("mentee_id", "mentor_id", "score")
CAPACITIES_COLUMNS = ("mentor_id", "capacity")
MATCHES_COLUMNS = ("mentee_id", "mentor_id", "score")

# Deliberately narrower than int(): rejects "1_000", "3.0", " 1e3" and non-ASCII digits,
# which are more likely data errors than intended capacities.
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")


class CsvFormatError(ValueError):
    """A malformed CSV input, located by file, line and (when known) column."""

    def __init__(self, path: StrPath, line: int, column: str | None, message: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:"
        if self.column is not None:
            where += f" column {self.column!r}:"
        return f"{where} {self.message}"

    def __reduce__(self) -> tuple[type[CsvFormatError], tuple[str, int, str | None, str]]:
        # The default pickling would call __init__ with the single formatted string.
        return (type(self), (self.path, self.line, self.column, self.message))


@dataclass(frozen=True, slots=True)
class SolveSummary:
    """Counts describing one ``solve_files`` run.

    ``mentees`` counts distinct mentees appearing in pairs.csv, ``mentors`` the mentors
    listed in capacities.csv (including capacity-0 ones).
    """

    pairs_read: int
    mentees: int
    mentors: int
    matched: int
    total_score: float


def read_pairs(path: StrPath, *, mentors: Container[str] | None = None) -> list[Pair]:
    """Read and validate pairs.csv.

    If ``mentors`` is given, a pair naming a mentor not in it is an error (reported on the
    ``mentor_id`` column of the offending line).
    """
    pairs: list[Pair] = []
    first_seen: dict[tuple[str, str], int] = {}
    for line, row in _read_rows(path, PAIRS_COLUMNS):
        mentee_id = _require_id(path, line, row, "mentee_id")
        mentor_id = _require_id(path, line, row, "mentor_id")
        score = _parse_score(path, line, row["score"])
        key = (mentee_id, mentor_id)
        previous = first_seen.setdefault(key, line)
        if previous != line:
            raise CsvFormatError(
                path,
                line,
                "mentor_id",
                f"duplicate pair (mentee {mentee_id!r}, mentor {mentor_id!r}), "
                f"first seen on line {previous}",
            )
        if mentors is not None and mentor_id not in mentors:
            raise CsvFormatError(
                path, line, "mentor_id", f"mentor {mentor_id!r} is not in the capacities file"
            )
        pairs.append(Pair(mentee_id, mentor_id, score))
    return pairs


def read_capacities(path: StrPath) -> dict[str, int]:
    """Read and validate capacities.csv into ``{mentor_id: capacity}``."""
    capacities: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    for line, row in _read_rows(path, CAPACITIES_COLUMNS):
        mentor_id = _require_id(path, line, row, "mentor_id")
        raw = row["capacity"]
        if not _INTEGER_RE.fullmatch(raw):
            raise CsvFormatError(path, line, "capacity", f"not an integer: {raw!r}")
        capacity = int(raw)
        if capacity < 0:
            raise CsvFormatError(path, line, "capacity", f"negative capacity: {raw!r}")
        previous = first_seen.setdefault(mentor_id, line)
        if previous != line:
            raise CsvFormatError(
                path,
                line,
                "mentor_id",
                f"duplicate mentor {mentor_id!r}, first seen on line {previous}",
            )
        capacities[mentor_id] = capacity
    return capacities


def write_matches(path: StrPath, assignments: Iterable[Assignment]) -> None:
    """Write matches.csv; scores use ``repr`` so they round-trip exactly."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MATCHES_COLUMNS)
        for a in assignments:
            writer.writerow((a.mentee_id, a.mentor_id, repr(float(a.score))))


def solve_files(pairs_path: StrPath, capacities_path: StrPath, out_path: StrPath) -> SolveSummary:
    """Read both inputs, solve, write ``out_path`` and summarise the run.

    Nothing is written if either input is invalid.
    """
    capacities = read_capacities(capacities_path)
    pairs = read_pairs(pairs_path, mentors=capacities)
    assignments = solve_assignment(pairs, capacities)
    write_matches(out_path, assignments)
    return SolveSummary(
        pairs_read=len(pairs),
        mentees=len({p.mentee_id for p in pairs}),
        mentors=len(capacities),
        matched=len(assignments),
        # fsum so the reported total does not depend on summation order.
        total_score=math.fsum(a.score for a in assignments),
    )


def _read_rows(path: StrPath, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(first physical line of the record, {column: stripped value})``."""
    # utf-8-sig strips a BOM if present and is identical to utf-8 otherwise.
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header_row = next(reader, None)
        if header_row is None:
            raise CsvFormatError(path, 1, None, f"empty file, expected header {','.join(columns)}")
        header = [name.strip() for name in header_row]
        _check_header(path, header, columns)

        # reader.line_num counts physical lines consumed so far, so a record starts one
        # line after the previous one ended (quoted fields may span several lines).
        end_of_previous = reader.line_num
        for raw in reader:
            line = end_of_previous + 1
            end_of_previous = reader.line_num
            if not raw or all(not field.strip() for field in raw):
                continue
            if len(raw) != len(header):
                raise CsvFormatError(
                    path, line, None, f"expected {len(header)} fields, found {len(raw)}"
                )
            yield line, {name: field.strip() for name, field in zip(header, raw, strict=True)}


def _check_header(path: StrPath, header: list[str], columns: tuple[str, ...]) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise CsvFormatError(path, 1, name, "duplicate header column")
        seen.add(name)
        if name not in columns:
            raise CsvFormatError(
                path, 1, name, f"unexpected header column, expected {','.join(columns)}"
            )
    for name in columns:
        if name not in seen:
            raise CsvFormatError(
                path, 1, name, f"missing header column, expected {','.join(columns)}"
            )


def _require_id(path: StrPath, line: int, row: dict[str, str], column: str) -> str:
    value = row[column]
    if not value:
        raise CsvFormatError(path, line, column, "empty id")
    return value


def _parse_score(path: StrPath, line: int, raw: str) -> float:
    try:
        score = float(raw)
    except ValueError:
        raise CsvFormatError(path, line, "score", f"not a number: {raw!r}") from None
    if not math.isfinite(score):
        raise CsvFormatError(path, line, "score", f"not a finite number: {raw!r}")
    return score
