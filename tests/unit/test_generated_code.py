"""Generated protobuf code must match proto/: regenerate with `make proto`, never edit by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_detects_a_stale_file(tmp_path: Path) -> None:
    copy = tmp_path / "pb"
    shutil.copytree(ROOT / "services/common/pb", copy, ignore=shutil.ignore_patterns("__pycache__"))
    edited = copy / "mentoring/v1/events_pb2.py"
    edited.write_text(edited.read_text() + "\n# edited by hand\n")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gen_protos.py"),
            "--check",
            "--generated",
            str(copy),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "events_pb2.py" in result.stderr
