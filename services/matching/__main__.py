"""Run a matching worker: `python -m services.matching`. Start several to share the load."""

from __future__ import annotations

from services.common import grpc_server, storage
from services.common.api import matching_pb2, matching_pb2_grpc
from services.common.config import Settings
from services.common.kafka import EventConsumer, EventPublisher
from services.common.scheduling import PeriodicTask
from services.matching.expiry import RequestExpiry
from services.matching.hr import hr_events_reader
from services.matching.runs import run_results_reader
from services.matching.servicer import MatchingServicer
from services.matching.worker import GROUP, TOPICS, MatchingWorker


async def serve(settings: Settings) -> None:
    storage.connect(settings)
    publisher = EventPublisher(settings)
    worker = MatchingWorker(publisher)
    consumer = EventConsumer(
        settings, topics=TOPICS, group=GROUP, handler=worker.handle, publisher=publisher
    )
    binding = grpc_server.ServiceBinding.of(
        matching_pb2.DESCRIPTOR,
        MatchingServicer(publisher, worker),
        matching_pb2_grpc.add_MatchingServiceServicer_to_server,
    )
    components: list[grpc_server.Component] = [
        publisher,
        worker,
        run_results_reader(settings),
        hr_events_reader(settings),
        consumer,
        PeriodicTask(
            "request-expiry",
            settings.scheduler_interval_seconds,
            RequestExpiry(publisher, worker).expire_once,
        ),
    ]
    await grpc_server.run_service(settings, [binding], components)


def main() -> None:
    grpc_server.main("matching", serve)


if __name__ == "__main__":
    main()
