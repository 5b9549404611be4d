"""`mentoring match solve` as a coordinator runs it: files in, optimal matches out."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "mentoring.cli"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_solve_writes_the_optimal_matches(tmp_path: Path) -> None:
    # m1 can take one mentee. Giving m1 to e1 (best single score) would leave e2 unmatched;
    # the objective matches both: e2-m1 and e1-m2.
    pairs = write(
        tmp_path / "pairs.csv", "mentee_id,mentor_id,score\ne1,m1,0.9\ne1,m2,0.5\ne2,m1,0.6\n"
    )
    capacities = write(tmp_path / "capacities.csv", "mentor_id,capacity\nm1,1\nm2,1\n")
    out = tmp_path / "matches.csv"
    result = subprocess.run(
        [
            *CLI,
            "match",
            "solve",
            "--pairs",
            str(pairs),
            "--capacities",
            str(capacities),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "matched 2 of 2 mentees" in result.stdout
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["mentee_id"], r["mentor_id"]) for r in rows} == {("e1", "m2"), ("e2", "m1")}
    assert sum(float(r["score"]) for r in rows) == 1.1


def test_solve_names_the_line_and_column_of_a_bad_row(tmp_path: Path) -> None:
    pairs = write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\ne1,m1,0.9\ne2,m1,lots\n")
    capacities = write(tmp_path / "capacities.csv", "mentor_id,capacity\nm1,1\n")
    out = tmp_path / "matches.csv"
    result = subprocess.run(
        [
            *CLI,
            "match",
            "solve",
            "--pairs",
            str(pairs),
            "--capacities",
            str(capacities),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert result.returncode == 2
    assert "pairs.csv:3:" in result.stdout
    assert "column 'score'" in result.stdout
    assert not out.exists()


def test_solve_loads_neither_grpc_nor_the_other_command_groups(tmp_path: Path) -> None:
    # The command is timed against a plain OR-Tools script (bench/matching.py); the platform's
    # RPC stack would be most of its start-up.
    pairs = write(tmp_path / "pairs.csv", "mentee_id,mentor_id,score\ne1,m1,0.9\n")
    capacities = write(tmp_path / "capacities.csv", "mentor_id,capacity\nm1,1\n")
    script = (
        "import sys\n"
        "from mentoring.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['grpc', 'google.protobuf', 'mentoring.clients', 'mentoring.cli_programs',\n"
        "         'mentoring.cli_analytics', 'mentoring.cli_auth', 'mentoring.cli_people']\n"
        "print('loaded:', [m for m in heavy if m in sys.modules])\n"
    )
    args = ["match", "solve", "--pairs", str(pairs), "--capacities", str(capacities)]
    result = subprocess.run(
        [sys.executable, "-c", script, *args, "--out", str(tmp_path / "m.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "matched 1 of 1 mentees" in result.stdout, result.stdout + result.stderr
    assert "loaded: []" in result.stdout


def test_the_token_option_reads_the_clients_variable() -> None:
    from mentoring import cli, clients

    assert cli.TOKEN_ENV == clients.TOKEN_ENV


def test_a_lazily_loaded_group_and_command_still_run() -> None:
    for args in (["engagement", "--help"], ["kpis", "--help"]):
        result = subprocess.run(
            [*CLI, *args], capture_output=True, text=True, check=False, env={"COLUMNS": "200"}
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Usage:" in result.stdout
    listed = subprocess.run([*CLI, "engagement", "--help"], capture_output=True, text=True)
    assert "relationship" in listed.stdout
