"""CSV front-end for ``mentoring match solve``.

Reads ``pairs.csv`` (``mentee_id,mentor_id,score``) and ``capacities.csv``
(``mentor_id,capacity``), solves with :func:`solve_numbered` (solve_assignment's model) and
writes ``matches.csv`` (``mentee_id,mentor_id,score``).

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

import numpy as np
import numpy.typing as npt

from services.matching.domain.assignment import Assignment, Pair, solve_numbered

__all__ = [
    "CAPACITIES_COLUMNS",
    "MATCHES_COLUMNS",
    "PAIRS_COLUMNS",
    "CsvFormatError",
    "PairColumns",
    "SolveSummary",
    "read_capacities",
    "read_pair_columns",
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

_BOM = b"\xef\xbb\xbf"
_NEWLINE = ord("\n")
_COMMA = ord(",")
# Bytes a plain file never holds: the quote, and the ASCII whitespace str.strip() removes
# (besides the newline, which ends rows).
_NOT_PLAIN = (b'"', b" ", b"\t", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")
# Whitespace str.strip() removes that is not ASCII (a no-break space, say).
_SPACE = re.compile(r"[^\S\n]")


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
    columns = read_pair_columns(pairs_path, mentors=capacities)
    assignments = solve_numbered(
        columns.mentee_idx,
        columns.mentor_idx,
        columns.scores,
        columns.mentee_ids,
        columns.mentor_ids,
        capacities,
    )
    write_matches(out_path, assignments)
    return SolveSummary(
        pairs_read=columns.scores.size,
        mentees=len(columns.mentee_ids),
        mentors=len(capacities),
        matched=len(assignments),
        # fsum so the reported total does not depend on summation order.
        total_score=math.fsum(a.score for a in assignments),
    )


@dataclass(frozen=True, slots=True)
class PairColumns:
    """pairs.csv as numbered columns: row i is (mentee_ids[mentee_idx[i]],
    mentor_ids[mentor_idx[i]], scores[i]); both id lists sorted, each id once, holding exactly
    the ids that occur (solve_numbered's input)."""

    mentee_idx: npt.NDArray[np.int64]
    mentor_idx: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    mentee_ids: list[str]
    mentor_ids: list[str]


def read_pair_columns(path: StrPath, *, mentors: Container[str] | None = None) -> PairColumns:
    """read_pairs as columns: the same validation and errors, without a Pair per row.

    A plain file (no quotes, no whitespace to strip, no blank rows or empty fields, valid
    scores, no duplicate pair) is split and converted column by column; anything else, or
    any error, goes through read_pairs, whose row-by-row reading locates it.
    """
    columns = _plain_pair_columns(path, mentors)
    if columns is not None:
        return columns
    return _number(read_pairs(path, mentors=mentors))


def _number(pairs: list[Pair]) -> PairColumns:
    mentee_ids = sorted({p.mentee_id for p in pairs})
    mentor_ids = sorted({p.mentor_id for p in pairs})
    mentee_index = {m: i for i, m in enumerate(mentee_ids)}
    mentor_index = {m: i for i, m in enumerate(mentor_ids)}
    return PairColumns(
        np.fromiter((mentee_index[p.mentee_id] for p in pairs), np.int64, len(pairs)),
        np.fromiter((mentor_index[p.mentor_id] for p in pairs), np.int64, len(pairs)),
        np.fromiter((p.score for p in pairs), np.float64, len(pairs)),
        mentee_ids,
        mentor_ids,
    )


def _plain_pair_columns(path: StrPath, mentors: Container[str] | None) -> PairColumns | None:
    """The columns of a plain pairs.csv, or None if the file is not plain or not valid."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if b"\r" in data:
        # Windows line ends; a lone CR (an old Mac line end) is left to the csv module.
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            return None
    # Quotes, and whitespace that read_pairs would strip, need the csv module.
    if any(c in data for c in _NOT_PLAIN):
        return None
    header_end = data.find(b"\n")
    if header_end < 0:
        return None
    try:
        header = data[:header_end].decode("utf-8").split(",")
    except UnicodeDecodeError:
        return None
    if sorted(header) != sorted(PAIRS_COLUMNS):
        return None
    body = data[header_end + 1 :]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    rows = _plain_rows(body, len(header))
    if rows is None:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.isascii() and _SPACE.search(text):
        return None
    # One split for the whole file: field k of row i is fields[i * width + k]; the last item
    # is the empty string after the final newline.
    width = len(header)
    fields = text.replace("\n", ",").split(",")
    mentee_col = fields[header.index("mentee_id") : -1 : width]
    mentor_col = fields[header.index("mentor_id") : -1 : width]
    try:
        scores = np.fromiter(
            map(float, fields[header.index("score") : -1 : width]), np.float64, rows
        )
    except ValueError:
        return None
    del fields
    if not np.isfinite(scores).all():
        return None
    mentee_ids = sorted(dict.fromkeys(mentee_col))
    mentor_ids = sorted(dict.fromkeys(mentor_col))
    if mentors is not None and any(m not in mentors for m in mentor_ids):
        return None
    mentee_index = {m: i for i, m in enumerate(mentee_ids)}
    mentor_index = {m: i for i, m in enumerate(mentor_ids)}
    mentee_idx = np.fromiter(map(mentee_index.__getitem__, mentee_col), np.int64, rows)
    mentor_idx = np.fromiter(map(mentor_index.__getitem__, mentor_col), np.int64, rows)
    # Sorted by (mentee, mentor), duplicates are adjacent; the solver's own sort then finds
    # the rows in order, which costs it next to nothing.
    key = mentee_idx * max(1, len(mentor_ids)) + mentor_idx
    order = np.argsort(key)
    key = key[order]
    if (key[1:] == key[:-1]).any():
        return None  # a duplicate pair
    return PairColumns(mentee_idx[order], mentor_idx[order], scores[order], mentee_ids, mentor_ids)


def _plain_rows(body: bytes, width: int) -> int | None:
    """The number of rows if every line of ``body`` (which ends with a newline) has exactly
    ``width`` fields, none of them empty; else None."""
    raw = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(raw == _NEWLINE)
    commas = np.flatnonzero(raw == _COMMA)
    rows = ends.size
    if commas.size != rows * (width - 1):
        return None
    if rows == 0:
        return 0
    # Separators of row i, in order: its width - 1 commas, then its newline. Every line has
    # the right fields exactly when they interleave; no field is empty exactly when no two
    # separators are adjacent (or the first at the start of a line).
    seps = np.empty((rows, width), np.int64)
    seps[:, :-1] = commas.reshape(rows, width - 1)
    seps[:, -1] = ends
    flat = seps.ravel()
    starts = np.empty_like(flat)
    starts[0] = 0
    starts[1:] = flat[:-1] + 1
    if (flat <= starts).any():  # out of order, or a field of length 0
        return None
    return rows


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
