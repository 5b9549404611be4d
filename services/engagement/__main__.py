"""Run the engagement service: `python -m services.engagement`."""

from __future__ import annotations

from services.common import grpc_server, storage
from services.common.api import engagement_pb2, engagement_pb2_grpc
from services.common.config import Settings
from services.common.kafka import EventConsumer, EventPublisher
from services.common.outbox import OutboxRelay
from services.common.scheduling import PeriodicTask
from services.engagement.consumer import GROUP, TOPICS, EngagementConsumer
from services.engagement.leaves import LeaveScheduler
from services.engagement.notifications import NudgeScheduler
from services.engagement.privacy import PersonalDataServicer


async def serve(settings: Settings) -> None:
    storage.connect(settings)
    await storage.run_sync(storage.prepare)
    publisher = EventPublisher(settings)
    consumer = EventConsumer(
        settings,
        topics=TOPICS,
        group=GROUP,
        handler=EngagementConsumer(publisher).handle,
        publisher=publisher,
    )
    binding = grpc_server.ServiceBinding.of(
        engagement_pb2.DESCRIPTOR,
        # EngagementServicer with the personal-data export (privacy.py).
        PersonalDataServicer(publisher),
        engagement_pb2_grpc.add_EngagementServiceServicer_to_server,
    )
    # Nudges: reminders to pairs, sent on notification-requested (see notifications.py).
    nudger = PeriodicTask(
        "nudges", settings.scheduler_interval_seconds, NudgeScheduler(publisher).nudge_once
    )
    # Leaves of absence pause and resume relationships on their dates (see leaves.py).
    leaves = PeriodicTask(
        "leaves", settings.scheduler_interval_seconds, LeaveScheduler().apply_once
    )
    # Events whose writer died between its commit and the broker's acknowledgement.
    relay = PeriodicTask(
        "outbox", settings.scheduler_interval_seconds, OutboxRelay(publisher).relay_once
    )
    await grpc_server.run_service(settings, [binding], [publisher, consumer, leaves, nudger, relay])


def main() -> None:
    grpc_server.main("engagement", serve)


if __name__ == "__main__":
    main()
