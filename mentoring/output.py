"""What every `mentoring` command shares: the consoles, and one-line RPC errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import typer
from rich.console import Console

console = Console()
# For messages while stdout carries data (CSV piped elsewhere).
error_console = Console(stderr=True)


@contextmanager
def rpc_errors(to: Console | None = None) -> Iterator[None]:
    """Show a failed RPC as one clear line and exit 1, instead of a traceback."""
    try:
        yield
    except grpc.RpcError as exc:
        (to or console).print(f"[red]error:[/] {exc.code().name}: {exc.details()}")
        raise typer.Exit(1) from None
