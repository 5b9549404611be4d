"""`mentoring auth …`: development tokens, and who may call what."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from mentoring.output import console
from mentoring.tokens import mint
from services.common import access
from services.common.config import AuthSettings

auth_app = typer.Typer(
    help="Authentication: development tokens and the access policy.", no_args_is_help=True
)


@auth_app.command("token")
def token(
    organization: Annotated[str, typer.Option("--org", "-o", help="The caller's organisation.")],
    subject: Annotated[
        str, typer.Option("--sub", help="Who calls; for a participant, their participant id.")
    ],
    roles: Annotated[
        list[str],
        typer.Option("--role", help="coordinator, participant or service; repeatable."),
    ],
    participants: Annotated[
        list[str] | None,
        typer.Option("--participant", help="Another participant id the subject acts as."),
    ] = None,
    email: Annotated[
        str,
        typer.Option(help="The caller's e-mail; a participant registers only under it."),
    ] = "",
    ttl: Annotated[
        int,
        typer.Option(
            help="Lifetime in seconds; services refuse more than "
            "AUTH_MAX_TOKEN_LIFETIME_SECONDS (24 h by default)."
        ),
    ] = 8 * 3600,
) -> None:
    """Print a token signed with AUTH_JWT_SECRET, for local use:
    `export MENTORING_TOKEN=$(mentoring auth token --org acme --role coordinator --sub me)`."""
    unknown = sorted(set(roles) - access.ROLES)
    if unknown:
        raise typer.BadParameter(
            f"unknown role {', '.join(unknown)}; one of {', '.join(sorted(access.ROLES))}",
            param_hint="--role",
        )
    settings = AuthSettings.from_env(os.environ)
    if not settings.jwt_secret:
        console.print(
            "[red]error:[/] AUTH_JWT_SECRET is not set. Set it to the services' secret; with "
            "AUTH_JWT_PUBLIC_KEY_FILE, tokens come from your identity provider instead."
        )
        raise typer.Exit(2)
    # print(), not the rich console: the token must come out whole and unwrapped.
    print(
        mint(
            settings,
            organization=organization,
            subject=subject,
            roles=roles,
            participant_ids=participants or (),
            email=email,
            ttl_seconds=ttl,
        )
    )


@auth_app.command("policy")
def policy() -> None:
    """Who may call each RPC when authentication is on (services/common/access.py)."""
    table = Table(title="Access policy")
    for column in ("service", "RPC", "who may call it"):
        table.add_column(column)
    for service, methods in access.POLICY.items():
        for method, rule in methods.items():
            table.add_row(service.removeprefix("mentoring.v1."), method, rule.describe())
    console.print(table)
