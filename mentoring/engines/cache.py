"""Where prepared engines live: built once per machine, shared by every checkout and test run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# The repository's deploy/ folder: the engines' build files live beside the other deploy files.
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """`MENTORING_CACHE_DIR`, else `$XDG_CACHE_HOME/mentoring-platform`, else ~/.cache/…"""
    if explicit := env.get("MENTORING_CACHE_DIR", "").strip():
        return Path(explicit)
    base = env.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "mentoring-platform"
