"""`mentoring engines`: prepare the engines `mentoring up` and the tests run on."""

from __future__ import annotations

import subprocess

import typer

from mentoring.engines import kafka, mongo, nginx
from mentoring.output import console

engines_app = typer.Typer(
    help="Apache Kafka, the MongoDB-wire server and the gateway's nginx, run by `mentoring up`.",
    no_args_is_help=True,
)


@engines_app.command()
def install() -> None:
    """Fetch Apache Kafka's jars from Maven Central and Debian 13's nginx package, and build the
    MongoDB-wire server from crates.io, into the cache, once per machine."""
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
    if nginx.installed():
        console.print(f"nginx {nginx.package_version() or ''}: ready in {nginx.binary().parent}")
    else:
        console.print(
            f"Fetching Debian {nginx.SUITE}'s nginx package (0.6 MB, after 10 MB of package "
            f"lists) with apt-get into {nginx.home()} …"
        )
        try:
            nginx.install()
        except kafka.EngineMissing as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        console.print(f"nginx {nginx.package_version()}: ready")
    server = f"MongoDB-wire server {mongo.CRATE} {mongo.VERSION}"
    if mongo.installed():
        console.print(f"{server}: ready in {mongo.server_dir()}")
        return
    console.print(
        f"Building the {server} from crates.io into {mongo.server_dir()}: once per machine, "
        "about ten minutes on two cores …"
    )
    try:
        mongo.install()
    except (kafka.EngineMissing, subprocess.CalledProcessError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{server}: ready")
