"""The MongoDB wire-protocol server the platform runs on outside containers: SecantusDB's Rust
server (`secantusd-rs`, crates.io `secantus-mdb`).

It speaks MongoDB's wire protocol over TCP on WiredTiger, MongoDB's own storage engine. It is
built from crates.io once per machine into the engines cache (a Rust toolchain at least as new
as the crate needs is added with rustup), and it is a separate process the launcher starts,
never imported by the services, which only ever see a `mongodb://` URI. README.md ("Storage and
messaging") says why it was chosen, what it measured and where it differs from MongoDB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mentoring.engines.cache import cache_dir
from mentoring.engines.kafka import EngineMissing

CRATE = "secantus-mdb"
VERSION = "0.5.3-beta.193"
BINARY = "secantusd-rs"
# The oldest Rust the crate builds with (Debian's is older): rustup adds it beside the default.
TOOLCHAIN = "1.99.1"


def server_dir(env: Mapping[str, str] = os.environ) -> Path:
    return cache_dir(env) / f"{CRATE}-{VERSION}"


def binary(env: Mapping[str, str] = os.environ) -> Path:
    return server_dir(env) / "bin" / BINARY


def installed(env: Mapping[str, str] = os.environ) -> bool:
    return binary(env).is_file()


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path.home() / ".cargo" / "bin" / name)
    if not Path(found).exists():
        raise EngineMissing(
            f"Rust's {name} is not installed: see https://rustup.rs (the server is built from "
            "crates.io once per machine)"
        )
    return found


def install(env: Mapping[str, str] = os.environ) -> Path:
    """Build the server into the cache with cargo, unless this version is there."""
    target = server_dir(env)
    if installed(env):
        return binary(env)
    rustup, cargo = _tool("rustup"), _tool("cargo")
    subprocess.run([rustup, "toolchain", "install", TOOLCHAIN, "--profile", "minimal"], check=True)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [cargo, f"+{TOOLCHAIN}", "install", CRATE, "--version", VERSION, "--root", str(staging)],
        check=True,
        env={**os.environ, "CARGO_TARGET_DIR": str(staging / "build")},
    )
    shutil.rmtree(staging / "build", ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return binary(env)


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
        # Without retryable writes: they only matter to a replica set failing over, and this is
        # one node on loopback.
        return f"mongodb://{self.address}/?retryWrites=false"

    def start_argv(self, env: Mapping[str, str] = os.environ) -> list[str]:
        if not installed(env):
            raise EngineMissing(
                f"The MongoDB-wire server ({CRATE} {VERSION}) is not built: run `make engines` "
                "(or `mentoring engines install`)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            str(binary(env)),
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
