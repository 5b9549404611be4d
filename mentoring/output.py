"""What every `mentoring` command shares: the console, and one-line RPC errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import typer
from rich.console import Console

console = Console()


@contextmanager
def rpc_errors() -> Iterator[None]:
    """Show a failed RPC as one clear line and exit 1, instead of a traceback."""
    try:
        yield
    except grpc.RpcError as exc:
        console.print(f"[red]error:[/] {exc.code().name}: {exc.details()}")
        raise typer.Exit(1) from None
