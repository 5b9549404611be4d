"""`mentoring demo` against the running platform: the journey a new user sees."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from mentoring import mailcatcher
from mentoring.cli_notifications import read
from mentoring.clients import Clients
from mentoring.stack import Stack
from tests.e2e.engine import MENTEE, MENTOR, Program


def test_demo_walks_the_journey_and_prints_moving_kpis(stack: Stack) -> None:
    env = {**stack.client_env(), "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-m", "mentoring.cli", "demo", "--organization", "demo-e2e"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"mentors\s+│\s+14 │", out), out
    assert re.search(r"mentees\s+│\s+36 │", out), out
    proposed = int(re.search(r"matches proposed\s+│\s+(\d+) │", out).group(1))  # type: ignore[union-attr]
    sessions = int(re.search(r"sessions\s+│\s+(\d+) │", out).group(1))  # type: ignore[union-attr]
    assert proposed >= 30
    assert sessions > 0
    # Three pairs planned a session and one moved it: invitations and an update, by e-mail.
    got = re.search(r"got (\d+) e-mails for the participants, (\d+) with calendar", out)
    assert got, out
    assert int(got.group(1)) > int(got.group(2)) >= 8
    methods = []
    for path in mailcatcher.messages(stack.mail_dir):
        mail = read(path)
        if mail["From"].addresses[0].display_name == "demo-e2e":
            methods += [
                part.get_param("method")
                for part in mail.walk()
                if part.get_content_type() == "text/calendar"
            ]
    assert methods.count("REQUEST") >= 8, methods


def test_cli_reports_an_rpc_error_in_one_line(stack: Stack) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mentoring.cli",
            "kpis",
            "--organization",
            "bad org!",
            "--program",
            "p",
        ],
        capture_output=True,
        text=True,
        env={**stack.client_env(), "COLUMNS": "200"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "INVALID_ARGUMENT: organization_id:" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_health_and_topics_commands(stack: Stack) -> None:
    env = {**stack.client_env(), "COLUMNS": "200"}
    up = subprocess.run(
        [sys.executable, "-m", "mentoring.cli", "health", stack.ports.address("engagement")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert up.returncode == 0
    assert "SERVING" in up.stdout
    down = subprocess.run(
        [sys.executable, "-m", "mentoring.cli", "health", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert down.returncode == 1
    assert "UNAVAILABLE" in down.stdout
    # Creating the topics again is harmless: existing topics are left alone.
    again = subprocess.run(
        [sys.executable, "-m", "mentoring.cli", "topics"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "dead-letter" in again.stdout


def test_match_commands_configure_run_and_recommend(
    stack: Stack, clients: Clients, tmp_path: Path
) -> None:
    program = Program(clients, stack)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "mode": "MATCHING_MODE_BULK",
                "criteria": [
                    {"kind": "CRITERION_KIND_SKILLS", "weight": 5},
                    {"kind": "CRITERION_KIND_LANGUAGE", "weight": 2, "hard": True},
                ],
            }
        )
    )
    env = {**stack.client_env(), "COLUMNS": "200"}
    ids = ["--organization", program.org, "--program", program.pid]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mentoring.cli", "match", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    configured = cli("config", *ids, "--file", str(config))
    assert configured.returncode == 0, configured.stdout + configured.stderr
    assert "CRITERION_KIND_LANGUAGE" in configured.stdout
    program.register("Ola", MENTOR, ["kotlin"], 2, languages=["no"])
    program.register("Per", MENTOR, ["kotlin"], 2, languages=["sv"])
    mentee = program.register("Siv", MENTEE, ["kotlin"], languages=["no"])
    program.register("Tor", MENTEE, ["kotlin"], languages=["fi"])
    program.wait_pool()

    recommended = cli("recommend", *ids, "--mentee", mentee)
    assert recommended.returncode == 0, recommended.stdout
    assert "Ola" in recommended.stdout and "Per" not in recommended.stdout  # language is hard

    ran = cli("run", *ids, "--max-gap", "0.01")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "matched 1 of 2 mentees" in ran.stdout
    assert "proved optimal: no plan scores more than" in ran.stdout
    assert "unmatched: 1" in ran.stdout
    assert "Fairness" in ran.stdout and "overall" in ran.stdout

    broken = tmp_path / "broken.json"
    broken.write_text('{"criteria": [{"kind": "CRITERION_KIND_SKILLS", "weight": 50}]}')
    refused = cli("config", *ids, "--file", str(broken))
    assert refused.returncode == 1
    assert "INVALID_ARGUMENT: config.criteria[0].weight" in refused.stdout
