"""Run the analytics worker: `python -m services.analytics`.

Faust's worker owns the event loop and the signals; the gRPC server and the ingest stage run
beside the app's agents and are stopped (drained) by the same shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, Protocol

import faust
from mode import Service

from services.analytics.app import AnalyticsApp
from services.analytics.ingest import INGEST_TOPIC, IngestStage
from services.analytics.servicer import AnalyticsServicer
from services.common.api import analytics_pb2, analytics_pb2_grpc
from services.common.config import Settings
from services.common.grpc_server import ApiServer, ServiceBinding
from services.common.kafka import ensure_topics
from services.common.metrics import start_metrics_server
from services.common.peers import SECRET_ENV, Peers

log = logging.getLogger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Beside(Service):
    """A component run beside the Faust app and stopped by the same shutdown. It is built in
    on_start, inside the worker's running loop, which grpc.aio and aiokafka bind to."""

    def __init__(self, name: str, build: Callable[[], Component], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._name = name
        self._build = build
        self._component: Component | None = None

    @property
    def label(self) -> str:
        return self._name

    @property
    def shortlabel(self) -> str:
        return self._name

    async def on_start(self) -> None:
        self._component = self._build()
        await self._component.start()

    async def on_stop(self) -> None:
        if self._component is not None:
            await self._component.stop()


def advertised_url(settings: Settings) -> str:
    """Where the other analytics workers forward requests for this worker's partitions."""
    address = os.environ.get("ANALYTICS_ADVERTISED_ADDR", "")
    if not address:
        host = settings.bind_host
        if host in ("0.0.0.0", "::", ""):
            # Listening everywhere (a container): peers reach this worker at its own address.
            host = socket.gethostbyname(socket.gethostname())
        address = f"{host}:{settings.grpc_port}"
    return f"grpc://{address}"


async def declare_topics(settings: Settings, analytics: AnalyticsApp) -> None:
    """The topic the ingest stage writes and the agent reads, and the tables' changelogs, with
    the platform's partitioning, before any worker joins the group: Faust would declare the
    changelogs itself, but two workers starting together can then fold into a changelog that
    the other's metadata does not show yet (PartitionsMismatch)."""
    bootstrap, partitions = settings.kafka_bootstrap_servers, settings.topic_partitions
    await ensure_topics(bootstrap, partitions, [INGEST_TOPIC])
    await ensure_topics(
        bootstrap, partitions, analytics.changelog_topics(), {"cleanup.policy": "compact"}
    )


def main() -> None:
    settings = Settings.from_env("analytics")
    url = advertised_url(settings)
    peers = Peers(settings.analytics_peer_secret, url)
    if not peers.enabled:
        log.warning(
            "%s is not set: this analytics worker answers for its own programs only; it neither "
            "forwards requests to other workers nor accepts theirs",
            SECRET_ENV,
        )
    analytics = AnalyticsApp(settings, canonical_url=url)
    asyncio.run(declare_topics(settings, analytics))
    binding = ServiceBinding.of(
        analytics_pb2.DESCRIPTOR,
        AnalyticsServicer(analytics, peers),
        analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
    )
    start_metrics_server(settings.bind_host, settings.metrics_port)
    worker = faust.Worker(
        analytics.app,
        Beside("ApiServer", lambda: ApiServer(settings, [binding], peers)),
        Beside("IngestStage", lambda: IngestStage(settings)),
        loglevel=os.environ.get("LOG_LEVEL", "INFO"),
        # Logging set up like the other services: one line per record, service name first.
        console_port=0,
    )
    # Faust's terminal spinner sets the root logger to DEBUG at WARNING and above, which made
    # aiokafka build a log record for every fetch (15 % of the worker's CPU under load).
    worker.spinner = None
    logging.getLogger("faust").setLevel(logging.WARNING)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
