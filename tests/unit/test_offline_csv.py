"""Tests for the CSV front-end of ``mentoring match solve``."""

from __future__ import annotations

import csv
import pickle
import random
from pathlib import Path

import pytest

from services.matching import offline_csv
from services.matching.domain.assignment import Assignment, Pair, solve_assignment
from services.matching.offline_csv import (
    CsvFormatError,
    SolveSummary,
    read_capacities,
    read_pair_columns,
    read_pairs,
    solve_files,
    write_matches,
)


def _write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _assert_error(
    excinfo: pytest.ExceptionInfo[CsvFormatError],
    path: Path,
    line: int,
    column: str | None,
    fragment: str,
) -> None:
    err = excinfo.value
    assert err.line == line
    assert err.column == column
    message = str(err)
    prefix = f"{path}:{line}:"
    if column is not None:
        prefix += f" column {column!r}:"
    assert message.startswith(prefix), message
    assert fragment in message


# --- pairs.csv ---------------------------------------------------------------------

PAIRS_ERRORS = [
    pytest.param(
        "mentee_id,mentor_id\na,x\n", 1, "score", "missing header column", id="missing-column"
    ),
    pytest.param(
        "mentee_id,mentor_id,score,extra\na,x,1,2\n",
        1,
        "extra",
        "unexpected header column",
        id="extra-column",
    ),
    pytest.param(
        "mentee_id,mentor_id,score,score\n", 1, "score", "duplicate header", id="dup-column"
    ),
    pytest.param("", 1, None, "empty file", id="empty-file"),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,1\n ,x,1\n", 3, "mentee_id", "empty id", id="empty-mentee"
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,1\nb,,1\n", 3, "mentor_id", "empty id", id="empty-mentor"
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,1\nb,x,1\nc,x,1\nd,x,1\ne,x,1\nf,x,abc\n",
        7,
        "score",
        "not a number: 'abc'",
        id="non-numeric-score",
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,\n", 2, "score", "not a number: ''", id="empty-score"
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,nan\n", 2, "score", "not a finite number", id="nan"
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,-inf\n", 2, "score", "not a finite number", id="inf"
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,1\nb,x,2\na , x ,3\n",
        4,
        "mentor_id",
        "duplicate pair (mentee 'a', mentor 'x'), first seen on line 2",
        id="duplicate-pair",
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x,1,9\n", 2, None, "expected 3 fields, found 4", id="long"
    ),
    pytest.param(
        "mentee_id,mentor_id,score\na,x\n", 2, None, "expected 3 fields, found 2", id="short"
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "fragment"), PAIRS_ERRORS)
def test_read_pairs_errors(
    tmp_path: Path, text: str, line: int, column: str | None, fragment: str
) -> None:
    path = _write(tmp_path / "pairs.csv", text)
    with pytest.raises(CsvFormatError) as excinfo:
        read_pairs(path)
    _assert_error(excinfo, path, line, column, fragment)


def test_error_message_format(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\na,x,abc\n")
    with pytest.raises(CsvFormatError) as excinfo:
        read_pairs(path)
    assert str(excinfo.value) == f"{path}:2: column 'score': not a number: 'abc'"
    assert isinstance(excinfo.value, ValueError)


def test_error_survives_pickling() -> None:
    err = CsvFormatError("pairs.csv", 7, "score", "not a number: 'abc'")
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == "pairs.csv:7: column 'score': not a number: 'abc'"
    assert (clone.path, clone.line, clone.column) == ("pairs.csv", 7, "score")


def test_unknown_mentor_in_pairs(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\na,x,1\nb,ghost,1\n")
    with pytest.raises(CsvFormatError) as excinfo:
        read_pairs(path, mentors={"x"})
    _assert_error(excinfo, path, 3, "mentor_id", "'ghost' is not in the capacities file")


def test_line_numbers_count_blank_lines_and_multiline_fields(tmp_path: Path) -> None:
    text = 'mentee_id,mentor_id,score\n\n"a\nb",x,1\n\nc,x,oops\n'
    path = _write(tmp_path / "pairs.csv", text)
    with pytest.raises(CsvFormatError) as excinfo:
        read_pairs(path)
    _assert_error(excinfo, path, 6, "score", "'oops'")


def test_read_pairs_strips_whitespace_reorders_columns_and_skips_blank_lines(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path / "pairs.csv",
        " score , mentor_id ,mentee_id\r\n 0.25 , x , a \r\n\r\n-1e-3,y,b\r\n,,\r\n",
    )
    assert read_pairs(path) == [Pair("a", "x", 0.25), Pair("b", "y", -0.001)]


def test_read_pairs_header_only(tmp_path: Path) -> None:
    assert read_pairs(_write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\n")) == []


# --- capacities.csv ---------------------------------------------------------------

CAPACITY_ERRORS = [
    pytest.param("mentor_id\nx\n", 1, "capacity", "missing header column", id="missing-column"),
    pytest.param(
        "mentor_id,capacity,notes\nx,1,hi\n", 1, "notes", "unexpected header", id="extra-column"
    ),
    pytest.param("mentor_id,capacity\nx,1\n,2\n", 3, "mentor_id", "empty id", id="empty-id"),
    pytest.param(
        "mentor_id,capacity\nx,1\ny,2.5\n", 3, "capacity", "not an integer: '2.5'", id="fraction"
    ),
    pytest.param("mentor_id,capacity\nx,1.0\n", 2, "capacity", "not an integer", id="float"),
    pytest.param("mentor_id,capacity\nx,two\n", 2, "capacity", "not an integer", id="word"),
    pytest.param("mentor_id,capacity\nx,\n", 2, "capacity", "not an integer: ''", id="empty"),
    pytest.param("mentor_id,capacity\nx,1_000\n", 2, "capacity", "not an integer", id="undersc"),
    pytest.param(
        "mentor_id,capacity\nx,1\ny,-2\n", 3, "capacity", "negative capacity: '-2'", id="negative"
    ),
    pytest.param(
        "mentor_id,capacity\nx,1\ny,2\nx,3\n",
        4,
        "mentor_id",
        "duplicate mentor 'x', first seen on line 2",
        id="duplicate-mentor",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "fragment"), CAPACITY_ERRORS)
def test_read_capacities_errors(
    tmp_path: Path, text: str, line: int, column: str | None, fragment: str
) -> None:
    path = _write(tmp_path / "capacities.csv", text)
    with pytest.raises(CsvFormatError) as excinfo:
        read_capacities(path)
    _assert_error(excinfo, path, line, column, fragment)


def test_read_capacities_valid(tmp_path: Path) -> None:
    path = _write(tmp_path / "capacities.csv", "mentor_id,capacity\nx, 2\ny,0\nz,+3\n")
    assert read_capacities(path) == {"x": 2, "y": 0, "z": 3}


# --- BOM ----------------------------------------------------------------------------


def test_bom_is_accepted(tmp_path: Path) -> None:
    pairs = _write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\na,x,1\n", bom=True)
    caps = _write(tmp_path / "capacities.csv", "mentor_id,capacity\nx,1\n", bom=True)
    assert read_pairs(pairs) == [Pair("a", "x", 1.0)]
    assert read_capacities(caps) == {"x": 1}


def test_bom_does_not_shift_line_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\na,x,zz\n", bom=True)
    with pytest.raises(CsvFormatError) as excinfo:
        read_pairs(path)
    _assert_error(excinfo, path, 2, "score", "'zz'")


# --- writing and the full round trip ----------------------------------------------


def test_write_matches_round_trips_scores(tmp_path: Path) -> None:
    out = tmp_path / "matches.csv"
    write_matches(out, [Assignment("a", "x", 0.1), Assignment("b,c", "y", 1 / 3)])
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["mentee_id", "mentor_id", "score"],
        ["a", "x", "0.1"],
        ["b,c", "y", repr(1 / 3)],
    ]
    assert float(rows[2][2]) == 1 / 3


def test_solve_files_round_trip(tmp_path: Path) -> None:
    pairs = _write(
        tmp_path / "pairs.csv",
        "mentee_id,mentor_id,score\n"
        "carol,m1,0.9\n"
        "alice,m1,0.8\n"
        "alice,m2,0.1\n"
        "bob,m1,0.7\n"
        "dave,m3,5\n"
        "erin,m2,0.4\n",
        bom=True,
    )
    capacities = _write(tmp_path / "capacities.csv", "mentor_id,capacity\nm1,2\nm2,1\nm3,0\n")
    out = tmp_path / "matches.csv"

    summary = solve_files(pairs, capacities, out)

    # At most 3 can be matched (m1 takes 2, m2 takes 1, m3 has capacity 0, so dave
    # stays unmatched). Giving m2 to erin lets m1 keep alice+carol: 0.4 + 1.7 = 2.1,
    # which beats alice on m2 and bob+carol on m1: 0.1 + 1.6 = 1.7.
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["mentee_id"], r["mentor_id"], float(r["score"])) for r in rows] == [
        ("alice", "m1", 0.8),
        ("carol", "m1", 0.9),
        ("erin", "m2", 0.4),
    ]
    assert (summary.pairs_read, summary.mentees, summary.mentors, summary.matched) == (6, 5, 3, 3)
    assert summary.total_score == pytest.approx(2.1, abs=1e-12)


def test_solve_files_rejects_unknown_mentor_and_writes_nothing(tmp_path: Path) -> None:
    pairs = _write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\na,x,1\na,nobody,2\n")
    capacities = _write(tmp_path / "capacities.csv", "mentor_id,capacity\nx,1\n")
    out = tmp_path / "matches.csv"
    with pytest.raises(CsvFormatError) as excinfo:
        solve_files(pairs, capacities, out)
    _assert_error(excinfo, pairs, 3, "mentor_id", "'nobody'")
    assert not out.exists()


def test_solve_files_with_no_pairs_writes_header_only(tmp_path: Path) -> None:
    pairs = _write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\n")
    capacities = _write(tmp_path / "capacities.csv", "mentor_id,capacity\nx,1\n")
    out = tmp_path / "matches.csv"
    summary = solve_files(pairs, capacities, out)
    assert out.read_text(encoding="utf-8") == "mentee_id,mentor_id,score\n"
    assert summary == SolveSummary(0, 0, 1, 0, 0.0)


# --- the column reader: read_pairs' results and errors, without a Pair per row ------------


def _as_pairs(path: Path) -> list[Pair]:
    columns = read_pair_columns(path)
    return [
        Pair(columns.mentee_ids[e], columns.mentor_ids[m], s)
        for e, m, s in zip(
            columns.mentee_idx.tolist(),
            columns.mentor_idx.tolist(),
            columns.scores.tolist(),
            strict=True,
        )
    ]


COLUMN_FILES = [
    pytest.param("mentee_id,mentor_id,score\nb,y,0.5\na,x,1\na,y,-2.25e-1\n", id="plain"),
    pytest.param("mentee_id,mentor_id,score\r\nb,y,0.5\r\na,x,1\r\n", id="crlf"),
    pytest.param("score,mentee_id,mentor_id\n0.5,b,y\n1,a,x", id="reordered-no-final-newline"),
    pytest.param('mentee_id,mentor_id,score\n"b,c",y,0.5\na,x,1\n', id="quoted"),
    pytest.param("mentee_id,mentor_id,score\nb , y,0.5\na,x, 1\n", id="spaces"),
    pytest.param("mentee_id,mentor_id,score\nb,y,0.5\n\na,x,1\n,,\n", id="blank-rows"),
    pytest.param("mentee_id,mentor_id,score\nzoë,ÿ,0.5\nzoe,y,1_0\n", id="non-ascii"),
    pytest.param("mentee_id,mentor_id,score\nzoë\u00a0,ÿ,0.5\n", id="no-break-space"),
    pytest.param("mentee_id,mentor_id,score\nb,y,0.5\ra,x,1\r", id="cr-only"),
    pytest.param("mentee_id,mentor_id,score\n", id="header-only"),
]


@pytest.mark.parametrize("text", COLUMN_FILES)
def test_read_pair_columns_reads_what_read_pairs_reads(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "pairs.csv", text, bom=True)
    expected = sorted(read_pairs(path), key=lambda p: (p.mentee_id, p.mentor_id))
    got = _as_pairs(path)
    assert sorted(got, key=lambda p: (p.mentee_id, p.mentor_id)) == expected
    columns = read_pair_columns(path)
    assert columns.mentee_ids == sorted({p.mentee_id for p in expected})
    assert columns.mentor_ids == sorted({p.mentor_id for p in expected})


PLAIN_ERRORS = [
    pytest.param("mentee_id,mentor_id,score\na,x,1\nb,x,1\na,x,3\n", id="duplicate"),
    pytest.param("mentee_id,mentor_id,score\na,x,1\nb,x,\n", id="empty-last-field"),
    pytest.param("mentee_id,mentor_id,score\na,x,1\n,x,1\n", id="empty-first-field"),
    pytest.param("mentee_id,mentor_id,score\na,x,1,2\nb,y\n", id="fields-shifted"),
    pytest.param("mentee_id,mentor_id,score\na,x,1\nb,y,inf\n", id="infinite"),
    pytest.param("mentee_id,mentor_id,score\na,x,1\nb,y,0x1p3\n", id="hex-score"),
    pytest.param("mentee_id,mentor_id,score\na,x,1\nb,ghost,1\n", id="unknown-mentor"),
]


@pytest.mark.parametrize(
    "text", PLAIN_ERRORS + [pytest.param(p.values[0], id=p.id) for p in PAIRS_ERRORS]
)
def test_read_pair_columns_reports_read_pairs_errors(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "pairs.csv", text)
    with pytest.raises(CsvFormatError) as expected:
        read_pairs(path, mentors={"x", "y"})
    with pytest.raises(CsvFormatError) as got:
        read_pair_columns(path, mentors={"x", "y"})
    assert str(got.value) == str(expected.value)


def test_solve_files_matches_solve_assignment_whatever_the_row_order(tmp_path: Path) -> None:
    # Scarce places and many equal scores: the solver's tie-breaking shows if the numbering
    # differs from solve_assignment's.
    rng = random.Random(3)
    mentors = {f"m{j}": rng.randint(0, 3) for j in range(40)}
    rows = [
        (f"e{i}", m, rng.choice(["0.5", "0.25", "1", "0.125", "-0.5"]))
        for i in range(150)
        for m in rng.sample(sorted(mentors), 6)
    ]
    capacities = _write(
        tmp_path / "capacities.csv",
        "mentor_id,capacity\n" + "".join(f"{m},{c}\n" for m, c in mentors.items()),
    )
    expected = solve_assignment(
        [Pair(e, m, float(s)) for e, m, s in rows], read_capacities(capacities)
    )
    assert expected
    for attempt in range(3):
        rng.shuffle(rows)
        pairs = _write(
            tmp_path / "pairs.csv",
            "mentee_id,mentor_id,score\n" + "".join(f"{e},{m},{s}\n" for e, m, s in rows),
        )
        out = tmp_path / f"matches-{attempt}.csv"
        summary = solve_files(pairs, capacities, out)
        with out.open(encoding="utf-8", newline="") as f:
            got = [
                Assignment(r["mentee_id"], r["mentor_id"], float(r["score"]))
                for r in csv.DictReader(f)
            ]
        assert got == expected
        assert (summary.pairs_read, summary.matched) == (len(rows), len(expected))


@pytest.mark.parametrize(
    "text",
    [
        p
        for p in COLUMN_FILES
        if p.id in {"plain", "crlf", "reordered-no-final-newline", "non-ascii"}
    ],
)
def test_a_plain_file_is_read_by_columns(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "pairs.csv", text, bom=True)
    expected = sorted(_as_pairs(path), key=lambda p: (p.mentee_id, p.mentor_id))

    def row_by_row(*args: object, **kwargs: object) -> list[Pair]:
        raise AssertionError("a plain file went through the row-by-row reader")

    monkeypatch.setattr(offline_csv, "read_pairs", row_by_row)
    assert sorted(_as_pairs(path), key=lambda p: (p.mentee_id, p.mentor_id)) == expected
