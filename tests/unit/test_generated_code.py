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


def _check(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check", *overrides],
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_detects_a_stale_openapi_document(tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    committed = (ROOT / "deploy/gateway/www/openapi.json").read_text()
    document.write_text(committed.replace('"ListPrograms"', '"ListProgrammes"', 1))
    result = _check("--openapi", str(document))
    assert result.returncode == 1
    assert f"differs: {document}" in result.stderr


def test_check_detects_stale_and_missing_typescript(tmp_path: Path) -> None:
    copy = tmp_path / "gen"
    shutil.copytree(ROOT / "examples/portal/src/gen", copy)
    edited = copy / "mentoring/v1/enrollment_pb.ts"
    edited.write_text(edited.read_text() + "\n// edited by hand\n")
    (copy / "mentoring/v1/analytics_pb.ts").unlink()
    result = _check("--typescript", str(copy))
    assert result.returncode == 1
    assert "enrollment_pb.ts" in result.stderr
    assert "analytics_pb.ts" in result.stderr
