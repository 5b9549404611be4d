"""Run a matching worker: `python -m services.matching`. Start several to share the load."""

from __future__ import annotations

from services.common import grpc_server, storage
from services.common.api import matching_pb2, matching_pb2_grpc
from services.common.config import Settings
from services.common.kafka import EventConsumer, EventPublisher
from services.common.outbox import RELAY_INTERVAL_SECONDS
from services.common.scheduling import PeriodicTask
from services.matching.expiry import RequestExpiry
from services.matching.hr import hr_events_reader
from services.matching.publication import Publication
from services.matching.runs import run_results_reader
from services.matching.servicer import MatchingServicer
from services.matching.worker import GROUP, TOPICS, MatchingWorker


async def serve(settings: Settings) -> None:
    storage.connect(settings)
    await storage.run_sync(storage.prepare)
    publisher = EventPublisher(settings)
    # Publishes what each change committed, right after it (see publication.py).
    publication = Publication(publisher)
    worker = MatchingWorker(publication)
    consumer = EventConsumer(
        settings, topics=TOPICS, group=GROUP, handler=worker.handle, publisher=publisher
    )
    binding = grpc_server.ServiceBinding.of(
        matching_pb2.DESCRIPTOR,
        MatchingServicer(publication),
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
            RequestExpiry(publication).expire_once,
        ),
        # Events and proposals whose writer died between its commit and the broker's
        # acknowledgement.
        PeriodicTask("outbox", RELAY_INTERVAL_SECONDS, publication.relay_once),
    ]
    await grpc_server.run_service(settings, [binding], components)


def main() -> None:
    grpc_server.main("matching", serve)


if __name__ == "__main__":
    main()
