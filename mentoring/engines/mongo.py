"""The MongoDB wire-protocol server the platform runs on outside containers: SecantusDB.

SecantusDB (PyPI `secantusdb`) speaks MongoDB's wire protocol over TCP on WiredTiger, MongoDB's
own storage engine: real indexes, documents on disk, concurrent clients. README.md ("Storage
and messaging") says why it was chosen over FerretDB, what it measured and where it differs
from MongoDB. It is a separate process the launcher starts, never imported by the services,
which only ever see a `mongodb://` URI.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class MongoNode:
    """One server on loopback, its WiredTiger files under data_dir."""

    data_dir: Path
    port: int
    cache_size: str = "512M"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def uri(self) -> str:
        # Without retryable writes: the server keeps every retryable write's reply and walks
        # them all on each write, which slowed a long import. They only matter to a replica
        # set failing over, and this is one node on loopback.
        return f"mongodb://{self.address}/?retryWrites=false"

    def start_argv(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            sys.executable,
            "-m",
            "secantus",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-path",
            str(self.data_dir),
            "--cache-size",
            self.cache_size,
            "--log-level",
            "WARNING",
        ]
