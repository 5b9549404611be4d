"""The `mentoring` command: run the embedded platform and talk to it over gRPC."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

import typer

from mentoring.lazy_commands import lazy_group, placeholder

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from services.common.api import events_pb2, matching_pb2

# gRPC, protobuf and the other command groups are imported where they are used (the groups
# when their command runs, see lazy_commands), so that a local command such as
# `match solve` does not pay for them.
_LAZY = {
    "kpis": "mentoring.cli_analytics:kpis",
    "report": "mentoring.cli_analytics:report",
    "engagement": "mentoring.cli_engagement:engagement_app",
    "programs": "mentoring.cli_programs:programs_app",
    "people": "mentoring.cli_people:people_app",
    "analytics": "mentoring.cli_analytics:analytics_app",
    "auth": "mentoring.cli_auth:auth_app",
    "engines": "mentoring.cli_engines:engines_app",
    "notifications": "mentoring.cli_notifications:notifications_app",
}
# mentoring.clients.TOKEN_ENV, not imported from there: that would load gRPC for every command.
TOKEN_ENV = "MENTORING_TOKEN"

app = typer.Typer(
    help="Open e-mentoring platform: run it, and talk to its services.",
    no_args_is_help=True,
    cls=lazy_group(_LAZY),
)
match_app = typer.Typer(help="Matching tools.", no_args_is_help=True)
app.add_typer(match_app, name="match")
for _group in ("engagement", "programs", "people", "analytics", "auth", "engines", "notifications"):
    app.add_typer(placeholder(), name=_group)


@app.callback()
def main_options(
    token: str | None = typer.Option(
        None,
        "--token",
        envvar=TOKEN_ENV,
        help="Bearer token sent on every call, for services with authentication on.",
        show_default=False,
    ),
) -> None:
    # Without a token there is nothing to set unless an earlier call in this process did.
    if token or "mentoring.clients" in sys.modules:
        from mentoring.clients import use_token

        use_token(token)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def up(
    log_dir: Path = typer.Option(Path(".run/logs"), help="Where each process writes its log."),
    data_dir: Path = typer.Option(
        Path(".run/data"), help="Where Kafka and the database keep their data across runs."
    ),
    matching_workers: int = typer.Option(
        2, envvar="MENTORING_MATCHING_WORKERS", min=1, help="Matching workers to run."
    ),
) -> None:
    """Start Kafka, the database, the services and the gateway on this machine; Ctrl-C stops
    them all."""
    from rich.table import Table

    from mentoring.engines import mongo
    from mentoring.engines.kafka import VERSION as KAFKA_VERSION
    from mentoring.output import console
    from mentoring.stack import DEMO_KEY_ID, DEMO_ORGANIZATION, Ports, Stack, StackError
    from services.common.config import AuthSettings

    # SIGINT too: a shell that starts us in the background sets it to "ignore".
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    stack = Stack(Ports.from_env(), log_dir=log_dir, data_dir=data_dir)
    try:
        with console.status("Starting Kafka, the database, the services and the gateway…"):
            stack.start_all(matching_workers=matching_workers)
        # Narrow enough for an 80-column terminal or a log file, so no address is cut short.
        table = Table(title=f"Mentoring platform is up (data in {data_dir})")
        for column in ("process", "address", "metrics"):
            table.add_column(column, no_wrap=True)
        for managed in stack.processes:
            metrics = managed.metrics_port
            table.add_row(
                managed.name,
                managed.address,
                f"http://127.0.0.1:{metrics}/metrics" if metrics else "",
            )
        console.print(table)
        console.print(
            f"kafka is Apache Kafka {KAFKA_VERSION} (KRaft controller on "
            f":{stack.ports.controller}); mongodb is SecantusDB's "
            f"{mongo.BINARY} {mongo.VERSION}. "
            f"Each process logs to {log_dir}/<process>.log."
        )
        gateway = f"http://{stack.gateway.address}"
        console.print(
            f"The gateway serves every API on [bold]{gateway}[/]: gRPC (HTTP/2 cleartext) and "
            f"HTTP/JSON. API reference: {gateway}/docs/ (OpenAPI document: "
            f"{gateway}/openapi.json). For example:"
        )
        # One line, never wrapped, so that it can be copied.
        console.print(
            f"  curl -X POST {gateway}/mentoring.v1.EnrollmentService/ListPrograms "
            "-H 'content-type: application/json' "
            f'-d \'{{"organization_id":"{DEMO_ORGANIZATION}"}}\'',
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
        if stack.catches_mail:
            console.print(
                f"Every e-mail the platform sends (nudges, proposals, calendar invitations) is "
                f"caught on :{stack.ports.smtp} and kept in {stack.mail_dir}: "
                "[bold].venv/bin/mentoring notifications list[/] shows them."
            )
        if AuthSettings.from_env(stack.env).enabled:
            console.print(
                "Authentication is [bold]on[/]: every call needs a token, e.g. "
                "[bold]export MENTORING_TOKEN=$(.venv/bin/mentoring auth token --org demo-org "
                "--role coordinator --sub me)[/]"
            )
        else:
            console.print(
                "Authentication is [yellow]off[/] (development mode): set AUTH_JWT_SECRET "
                "to require tokens."
            )
        trusted = f"hr-events are trusted when signed by a key in {stack.hr_producer_keys}"
        if stack.configured_hr_producer_keys:
            console.print(f"{trusted}.")
        else:
            console.print(
                f"{trusted}: this run's key for {DEMO_ORGANIZATION} is "
                f"{stack.demo_hr_producer_pem} (key id {DEMO_KEY_ID})."
            )
        console.print(
            "Try [bold].venv/bin/mentoring demo[/] in another terminal. Ctrl-C stops everything; "
            "[bold]make reset[/] wipes the data."
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
            unclean = stack.stop()
    console.print("Stopped." if not unclean else f"[yellow]Stopped; unclean exits: {unclean}[/]")
    raise typer.Exit(code)


@app.command()
def demo(
    organization: str = typer.Option("demo-org", help="Organization (tenant) id to use."),
    seed: int = typer.Option(7, help="Seed of the sample population."),
) -> None:
    """Load a sample program of 50 people, walk the journey and print the live KPIs."""
    from mentoring.cli_analytics import print_kpis
    from mentoring.clients import Clients
    from mentoring.demo import run_demo
    from mentoring.output import console, rpc_errors

    with Clients() as clients, rpc_errors():
        kpis = run_demo(clients, console, organization, seed)
    print_kpis(kpis)


# In mentoring/cli_analytics.py with the `analytics` group; top-level for short commands.
# Placeholders here (for their place in the listing), loaded by name (_LAZY).
app.command("kpis")(placeholder)
app.command("report")(placeholder)


@app.command()
def topics(
    partitions: int = typer.Option(
        6, envvar="KAFKA_TOPIC_PARTITIONS", help="Partitions per topic."
    ),
    bootstrap: str = typer.Option("127.0.0.1:9092", envvar="KAFKA_BOOTSTRAP_SERVERS"),
) -> None:
    """Create the platform's Kafka topics (existing ones are left alone)."""
    import asyncio

    from mentoring.output import console
    from services.common.events import ALL_TOPICS
    from services.common.kafka import ensure_topics

    asyncio.run(ensure_topics(bootstrap, partitions))
    console.print(f"topics ready on {bootstrap}: {', '.join(ALL_TOPICS)}")


@app.command()
def health(address: str = typer.Argument(..., help="host:port of a service's gRPC API.")) -> None:
    """Exit 0 if the service at ADDRESS reports SERVING (container health checks use this)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from mentoring.output import console, rpc_errors

    with grpc.insecure_channel(address) as channel, rpc_errors():
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=3
        )
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    console.print(f"{address}: {status}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise typer.Exit(1)


M = TypeVar("M", bound="Message")


def _read_json(file: Path, message: M) -> M:
    """A message from a proto-JSON file; a clear error and exit 2 if it is not one."""
    from google.protobuf import json_format

    from mentoring.output import console

    try:
        return json_format.Parse(file.read_text(), message)
    except (OSError, json_format.ParseError) as exc:
        console.print(f"[red]error:[/] {file}: {exc}")
        raise typer.Exit(2) from None


@match_app.command("config")
def match_config(
    organization: str = typer.Option(..., "--organization", "-o"),
    program: str = typer.Option(..., "--program", "-p"),
    file: Path | None = typer.Option(
        None, help="JSON MatchingConfig to set (proto JSON); without it, print the current one."
    ),
) -> None:
    """Show or set a program's matching criteria."""
    from google.protobuf import json_format

    from mentoring.clients import Clients
    from mentoring.output import console, rpc_errors
    from services.common.api import matching_pb2

    with Clients() as clients, rpc_errors():
        if file is None:
            config = clients.matching.GetMatchingConfig(
                matching_pb2.GetMatchingConfigRequest(
                    organization_id=organization, program_id=program
                )
            )
        else:
            config = _read_json(file, matching_pb2.MatchingConfig())
            config.organization_id, config.program_id = organization, program
            config = clients.matching.SetMatchingConfig(
                matching_pb2.SetMatchingConfigRequest(config=config)
            )
    console.print_json(json_format.MessageToJson(config))


@match_app.command("taxonomy")
def match_taxonomy(
    organization: str = typer.Option(..., "--organization", "-o"),
    file: Path | None = typer.Option(None, help="JSON SkillTaxonomy to set; without it, print."),
) -> None:
    """Show or set the organisation's skill taxonomy (synonyms and parent skills)."""
    from google.protobuf import json_format

    from mentoring.clients import Clients
    from mentoring.output import console, rpc_errors
    from services.common.api import matching_pb2

    with Clients() as clients, rpc_errors():
        if file is None:
            taxonomy = clients.matching.GetSkillTaxonomy(
                matching_pb2.GetSkillTaxonomyRequest(organization_id=organization)
            )
        else:
            taxonomy = _read_json(file, matching_pb2.SkillTaxonomy())
            taxonomy.organization_id = organization
            taxonomy = clients.matching.SetSkillTaxonomy(
                matching_pb2.SetSkillTaxonomyRequest(taxonomy=taxonomy)
            )
    console.print_json(json_format.MessageToJson(taxonomy))


@match_app.command("run")
def match_run(
    organization: str = typer.Option(..., "--organization", "-o"),
    program: str = typer.Option(..., "--program", "-p"),
    cohort: str = typer.Option("", help="Limit the run to one cohort."),
    stable: bool = typer.Option(False, help="Stable matching on both sides' rankings."),
    max_gap: float = typer.Option(
        0.0,
        help="Stop once proved within this share of the best total score (e.g. 0.001 for "
        "99.9 %; 0 proves the optimum). For very large programs.",
    ),
    timeout: float = typer.Option(300, help="Seconds to wait for the result."),
) -> None:
    """Bulk-match a program (or cohort) and print the run report with its fairness table."""
    from mentoring.clients import Clients
    from mentoring.demo import wait_for
    from mentoring.output import console, rpc_errors
    from services.common.api import events_pb2, matching_pb2

    algorithm = (
        events_pb2.MATCHING_ALGORITHM_STABLE if stable else events_pb2.MATCHING_ALGORITHM_OPTIMAL
    )
    with Clients() as clients, rpc_errors():
        run = clients.matching.StartMatchingRun(
            matching_pb2.StartMatchingRunRequest(
                organization_id=organization,
                program_id=program,
                cohort_id=cohort,
                algorithm=algorithm,
                requested_by=clients.actor(),
                max_gap=max_gap,
            )
        )
        request = matching_pb2.GetMatchingRunRequest(
            organization_id=organization, run_id=run.run_id
        )

        def done() -> matching_pb2.MatchingRun | None:
            got = clients.matching.GetMatchingRun(request)
            return got if got.status != matching_pb2.RUN_STATUS_QUEUED else None

        with console.status(f"Matching run {run.run_id}…"):
            finished = wait_for("the matching run", done, timeout)
    print_run(finished)
    if finished.status == matching_pb2.RUN_STATUS_FAILED:
        raise typer.Exit(1)


def _shortfall(result: events_pb2.MatchingRunCompleted) -> float:
    """How far the total is below the bound, as a share of it (a planned pair that a
    concurrent request took meanwhile counts in the shortfall)."""
    bound = result.score_bound
    return max(0.0, (bound - result.total_score) / bound) if bound > 0 else 0.0


def print_run(run: matching_pb2.MatchingRun) -> None:
    from rich.table import Table

    from mentoring.output import console
    from services.common.api import events_pb2

    result = run.result
    if result.error:
        console.print(f"[red]run {run.run_id} failed:[/] {result.error}")
        return
    console.print(
        f"Run {run.run_id}: matched {result.matched} of {result.mentees_considered} mentees "
        f"with {result.mentors_considered} mentors in {result.seconds:.2f}s; "
        f"total score {result.total_score:.3f}; scores median {result.scores.median:.3f}, "
        f"p10 {result.scores.p10:.3f}, p90 {result.scores.p90:.3f}"
    )
    if result.algorithm == events_pb2.MATCHING_ALGORITHM_OPTIMAL:
        if result.proved_optimal:
            console.print(f"  proved optimal: no plan scores more than {result.score_bound:.3f}")
        else:
            console.print(
                f"  the best achievable total is at most {result.score_bound:.3f} "
                f"(the plan is within {_shortfall(result):.3%} of it)"
            )
    reasons: dict[str, int] = {}
    for unmatched in result.unmatched:
        reasons[unmatched.reason] = reasons.get(unmatched.reason, 0) + 1
    for reason, count in sorted(reasons.items()):
        console.print(f"  unmatched: {count} — {reason}")
    table = Table(title="Fairness: match rate and scores per group")
    for column in ("dimension", "group", "mentees", "matched", "rate", "median score", "flag"):
        table.add_column(column)
    for g in result.fairness:
        table.add_row(
            g.dimension,
            g.group,
            str(g.mentees),
            str(g.matched),
            f"{g.match_rate:.0%}",
            f"{g.median_score:.3f}",
            "[red]below 4/5 of overall[/]" if g.flagged else "",
        )
    console.print(table)


@match_app.command("recommend")
def match_recommend(
    organization: str = typer.Option(..., "--organization", "-o"),
    program: str = typer.Option(..., "--program", "-p"),
    mentee: str = typer.Option(..., "--mentee", "-m"),
    limit: int = typer.Option(5),
) -> None:
    """A mentee's best mentors with free capacity, and why."""
    from rich.table import Table

    from mentoring.clients import Clients
    from mentoring.output import console, rpc_errors
    from services.common.api import matching_pb2

    with Clients() as clients, rpc_errors():
        found = clients.matching.RecommendMentors(
            matching_pb2.RecommendMentorsRequest(
                organization_id=organization, program_id=program, mentee_id=mentee, limit=limit
            )
        )
    table = Table(title=f"Mentors recommended for {mentee}")
    for column in ("mentor", "name", "score", "free", "why"):
        table.add_column(column)
    for r in found.recommendations:
        why = "; ".join(f"{c.criterion}: {c.detail}" for c in r.breakdown)
        table.add_row(r.mentor_id, r.display_name, f"{r.score:.3f}", str(r.free_slots), why)
    console.print(table)


@match_app.command("solve")
def match_solve(
    pairs: Path = typer.Option(..., help="CSV: mentee_id,mentor_id,score (allowed pairs only)."),
    capacities: Path = typer.Option(..., help="CSV: mentor_id,capacity."),
    out: Path = typer.Option(..., help="Where to write mentee_id,mentor_id,score."),
) -> None:
    """Optimal matching from your own scores: most mentees matched, then highest total score."""
    # Not mentoring.output's console: that module loads gRPC, which this command does not use.
    from rich.console import Console

    from services.matching.offline_csv import CsvFormatError, solve_files

    console = Console()
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
