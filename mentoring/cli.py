"""The `mentoring` command: run the embedded platform and talk to it over gRPC."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import grpc
import typer
from rich.console import Console
from rich.table import Table

from mentoring.clients import Clients
from services.common.api import analytics_pb2

app = typer.Typer(
    help="Open e-mentoring platform: run it, and talk to its services.", no_args_is_help=True
)
match_app = typer.Typer(help="Matching tools.", no_args_is_help=True)
app.add_typer(match_app, name="match")
console = Console()


@contextmanager
def rpc_errors() -> Iterator[None]:
    """Show a failed RPC as one clear line and exit non-zero, instead of a traceback."""
    try:
        yield
    except grpc.RpcError as exc:
        console.print(f"[red]error:[/] {exc.code().name}: {exc.details()}")
        raise typer.Exit(1) from None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def up(
    log_dir: Path = typer.Option(Path(".run/logs"), help="Where each process writes its log."),
) -> None:
    """Start the broker and the four services on this machine; Ctrl-C stops them all."""
    from mentoring.stack import SERVICES, Ports, Stack, StackError

    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    stack = Stack(Ports.from_env(), log_dir=log_dir)
    try:
        with console.status("Starting the broker and the services…"):
            stack.start_all()
        table = Table(title="Mentoring platform is up (embedded broker, in-memory storage)")
        for column in ("process", "gRPC", "metrics", "log"):
            table.add_column(column)
        table.add_row("broker (Tansu)", stack.ports.bootstrap, "", str(log_dir / "broker.log"))
        for name in SERVICES:
            table.add_row(
                name,
                stack.ports.address(name),
                f"http://127.0.0.1:{stack.ports.metrics[name]}/metrics",
                str(log_dir / f"{name}.log"),
            )
        console.print(table)
        console.print(
            "Try [bold].venv/bin/mentoring demo[/] in another terminal. Ctrl-C stops everything."
        )
        while True:
            for managed in stack.processes:
                if managed.process.poll() is not None:
                    raise StackError(f"{managed.name} exited unexpectedly\n{stack.tail(managed)}")
            time.sleep(0.5)
    except StackError as exc:
        console.print(f"[red]error:[/] {exc}")
        code = 1
    except KeyboardInterrupt:
        code = 0
    finally:
        with console.status("Stopping…"):
            codes = stack.stop()
    unclean = {name: rc for name, rc in codes.items() if rc not in (0, -signal.SIGTERM)}
    console.print("Stopped." if not unclean else f"[yellow]Stopped; unclean exits: {unclean}[/]")
    raise typer.Exit(code)


@app.command()
def demo(
    organization: str = typer.Option("demo-org", help="Organization (tenant) id to use."),
    seed: int = typer.Option(7, help="Seed of the sample population."),
) -> None:
    """Load a sample program of 50 people, walk the journey and print the live KPIs."""
    from mentoring.demo import run_demo

    with Clients() as clients, rpc_errors():
        kpis = run_demo(clients, console, organization, seed)
    _print_kpis(kpis)


@app.command()
def kpis(
    organization: str = typer.Option(..., "--organization", "-o"),
    program: str = typer.Option(..., "--program", "-p"),
) -> None:
    """Print a program's live KPIs."""
    with Clients() as clients, rpc_errors():
        _print_kpis(
            clients.analytics.GetProgramKpis(
                analytics_pb2.GetProgramKpisRequest(
                    organization_id=organization, program_id=program
                )
            )
        )


def _print_kpis(kpis: analytics_pb2.ProgramKpis) -> None:
    table = Table(title=f"KPIs of program {kpis.program_id}")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for field in analytics_pb2.ProgramKpis.DESCRIPTOR.fields:
        if field.name not in ("organization_id", "program_id"):
            table.add_row(field.name.replace("_", " "), str(getattr(kpis, field.name)))
    console.print(table)


@app.command()
def topics(
    partitions: int = typer.Option(
        6, envvar="KAFKA_TOPIC_PARTITIONS", help="Partitions per topic."
    ),
    bootstrap: str = typer.Option("127.0.0.1:9092", envvar="KAFKA_BOOTSTRAP_SERVERS"),
) -> None:
    """Create the platform's Kafka topics (existing ones are left alone)."""
    import asyncio

    from services.common.events import ALL_TOPICS
    from services.common.kafka import ensure_topics

    asyncio.run(ensure_topics(bootstrap, partitions))
    console.print(f"topics ready on {bootstrap}: {', '.join(ALL_TOPICS)}")


@app.command()
def health(address: str = typer.Argument(..., help="host:port of a service's gRPC API.")) -> None:
    """Exit 0 if the service at ADDRESS reports SERVING (container health checks use this)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel, rpc_errors():
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=3
        )
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    console.print(f"{address}: {status}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise typer.Exit(1)


@match_app.command("solve")
def match_solve(
    pairs: Path = typer.Option(..., help="CSV: mentee_id,mentor_id,score (allowed pairs only)."),
    capacities: Path = typer.Option(..., help="CSV: mentor_id,capacity."),
    out: Path = typer.Option(..., help="Where to write mentee_id,mentor_id,score."),
) -> None:
    """Optimal matching from your own scores: most mentees matched, then highest total score."""
    from services.matching.offline_csv import CsvFormatError, solve_files

    try:
        summary = solve_files(pairs, capacities, out)
    except (CsvFormatError, OSError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"matched {summary.matched} of {summary.mentees} mentees to {summary.mentors} mentors, "
        f"total score {summary.total_score:.6g}; wrote {out}"
    )


def main() -> None:
    sys.exit(app())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
