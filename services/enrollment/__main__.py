"""Run the enrollment service: `python -m services.enrollment`."""

from __future__ import annotations

from services.common import grpc_server, storage
from services.common.api import enrollment_pb2, enrollment_pb2_grpc
from services.common.config import Settings
from services.common.kafka import EventConsumer, EventPublisher
from services.common.outbox import RELAY_INTERVAL_SECONDS, OutboxRelay
from services.common.scheduling import PeriodicTask
from services.enrollment.hr_consumer import GROUP, TOPICS, HrEventsConsumer
from services.enrollment.privacy import PersonalDataServicer


async def serve(settings: Settings) -> None:
    storage.connect(settings)
    await storage.run_sync(storage.prepare)
    publisher = EventPublisher(settings)
    binding = grpc_server.ServiceBinding.of(
        enrollment_pb2.DESCRIPTOR,
        # EnrollmentServicer with the personal-data RPCs (privacy.py).
        PersonalDataServicer(publisher),
        enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server,
    )
    hr_events = EventConsumer(
        settings,
        topics=TOPICS,
        group=GROUP,
        handler=HrEventsConsumer(publisher).handle,
        publisher=publisher,
    )
    # Events whose writer died between its commit and the broker's acknowledgement.
    relay = PeriodicTask("outbox", RELAY_INTERVAL_SECONDS, OutboxRelay(publisher).relay_once)
    await grpc_server.run_service(settings, [binding], [publisher, hr_events, relay])


def main() -> None:
    grpc_server.main("enrollment", serve)


if __name__ == "__main__":
    main()
