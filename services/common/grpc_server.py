"""Bootstrap shared by every service: gRPC server with health, reflection and interceptors
(errors, metrics, authentication), the same RPCs as HTTP/JSON behind the same interceptors,
the metrics endpoint, its background components, and graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import auth
from services.common.config import Settings
from services.common.connect import ServicerApp
from services.common.http_server import Asgi, HttpServer, http_app
from services.common.interceptors import ObservabilityInterceptor
from services.common.metrics import start_metrics_server
from services.common.peers import Peers

log = logging.getLogger(__name__)


class Component(Protocol):
    """A background part of a service (producer, consumer) started before and stopped after RPCs."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """One gRPC service of the process: its descriptor, its servicer and the generated adder."""

    descriptor: ServiceDescriptor
    servicer: Any
    add_to_server: Callable[[Any, aio.Server], None]

    @property
    def name(self) -> str:
        return str(self.descriptor.full_name)

    @classmethod
    def of(
        cls, file: FileDescriptor, servicer: Any, add_to_server: Callable[[Any, aio.Server], None]
    ) -> ServiceBinding:
        """Bind the one service a proto file defines."""
        (service,) = file.services_by_name.values()
        return cls(service, servicer, add_to_server)


class GrpcServer:
    """A grpc.aio server with the platform's interceptors, health and reflection."""

    def __init__(
        self,
        settings: Settings,
        bindings: Sequence[ServiceBinding],
        peers: Peers | None = None,
    ) -> None:
        """`peers`: for a service whose workers forward requests to one another (analytics)."""
        self._settings = settings
        self._names = [b.name for b in bindings]
        # Outermost first: metrics and error mapping also see calls that authentication refuses.
        self.interceptors: list[aio.ServerInterceptor] = [
            ObservabilityInterceptor(),
            *auth.server_interceptors(settings.auth, settings.service, peers),
        ]
        self.server = aio.server(interceptors=self.interceptors)
        self.health = health.aio.HealthServicer()
        for binding in bindings:
            binding.add_to_server(binding.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.address = f"{settings.bind_host}:{settings.grpc_port}"
        self.server.add_insecure_port(self.address)

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *self._names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s serving gRPC on %s", self._settings.service, self.address)

    async def stop(self) -> None:
        # Health turns NOT_SERVING first so load balancers stop sending, then in-flight RPCs drain.
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self._settings.shutdown_grace_seconds)


class ApiServer:
    """The process's APIs: gRPC, and the same RPCs as HTTP/JSON on `http_port` (unless it is 0)
    through the gRPC server's very interceptors."""

    def __init__(
        self,
        settings: Settings,
        bindings: Sequence[ServiceBinding],
        peers: Peers | None = None,
        pages: Mapping[str, Asgi] | None = None,
    ) -> None:
        """`pages`: plain HTTP pages served beside the RPCs (see http_server.http_app)."""
        self.grpc = GrpcServer(settings, bindings, peers)
        self.http: HttpServer | None = None
        if settings.http_port:
            apps = [
                ServicerApp(b.descriptor, b.servicer, b.add_to_server, self.grpc.interceptors)
                for b in bindings
            ]
            self.http = HttpServer(
                http_app(apps, settings.cors_origins, pages or {}),
                settings.bind_host,
                settings.http_port,
                settings.shutdown_grace_seconds,
            )

    async def start(self) -> None:
        await self.grpc.start()
        if self.http is not None:
            await self.http.start()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        await self.grpc.stop()


def main(service: str, serve: Callable[[Settings], Coroutine[Any, Any, None]]) -> None:
    """Entry point of a service process."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    asyncio.run(serve(Settings.from_env(service)))


async def run_service(
    settings: Settings,
    bindings: Sequence[ServiceBinding],
    components: Sequence[Component] = (),
    pages: Mapping[str, Asgi] | None = None,
) -> None:
    """Run one service process until SIGTERM or SIGINT, then shut down in order. `pages`: plain
    HTTP pages beside the RPCs (see http_server.http_app)."""
    start_metrics_server(settings.bind_host, settings.metrics_port)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    started: list[Component] = []
    server = ApiServer(settings, bindings, pages=pages)
    try:
        for component in components:
            await component.start()
            started.append(component)
        await server.start()
        await stop_requested.wait()
        log.info("%s shutting down", settings.service)
        await server.stop()
    finally:
        # Reverse order: consumers stop (committing offsets) before the producer they use flushes.
        for component in reversed(started):
            await component.stop()
    log.info("%s stopped", settings.service)
