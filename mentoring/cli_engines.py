"""`mentoring engines`: prepare the engines `mentoring up` and the tests run on."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version

import typer

from mentoring.engines import kafka
from mentoring.output import console

engines_app = typer.Typer(
    help="Apache Kafka and the MongoDB-wire server, run by `mentoring up`.", no_args_is_help=True
)


def mongodb_server_version() -> str | None:
    try:
        return version("secantusdb")
    except PackageNotFoundError:
        return None


@engines_app.command()
def install() -> None:
    """Fetch Apache Kafka's jars from Maven Central into the cache, once per machine."""
    if kafka.installed():
        console.print(f"Apache Kafka {kafka.VERSION}: ready in {kafka.libs_dir()}")
    else:
        console.print(
            f"Fetching Apache Kafka {kafka.VERSION} (kafka_2.13 and its runtime dependencies, "
            f"about 46 MB) from Maven Central into {kafka.libs_dir()} …"
        )
        try:
            kafka.install()
        except (kafka.EngineMissing, subprocess.CalledProcessError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        console.print(f"Apache Kafka {kafka.VERSION}: ready")
    found = mongodb_server_version()
    if found is None:
        console.print("[red]error:[/] the MongoDB-wire server is missing: `make install`")
        raise typer.Exit(1)
    console.print(f"MongoDB-wire server SecantusDB {found}: installed")
