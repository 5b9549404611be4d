"""The analytics Faust app: every event stream folded into live per-program KPIs.

KPIs live in a Faust table keyed by program, backed by a changelog topic, so they survive a
restart of the worker and move with their partitions to another worker.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import Gauge

from services.analytics import kpis
from services.analytics.transport import transport_with_fetch_wait
from services.common import metrics
from services.common.config import Settings
from services.common.events import (
    DEAD_LETTER_TOPIC,
    PROGRAM_TOPICS,
    EventDecodeError,
    dead_letter,
    decode_event,
)

log = logging.getLogger(__name__)

GROUP = "analytics"
BATCH_SIZE = 2000
BATCH_WAIT_SECONDS = 0.02

PROGRAM_KPI = Gauge(
    "mentoring_program_kpi",
    "Live KPI of a mentoring program (participants, matches, relationships, sessions).",
    ["organization", "program", "kpi"],
)


def program_key(organization_id: str, program_id: str) -> str:
    # The same bytes as services.common.events.partition_key: the table's changelog partition
    # for a program then equals the partition its events arrive on.
    return f"{organization_id}/{program_id}"


class AnalyticsApp:
    """The Faust app and its tables, built from settings (tests run several side by side)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        app = faust.App(
            GROUP,
            broker=f"kafka://{settings.kafka_bootstrap_servers}",
            store="memory://",
            topic_partitions=settings.topic_partitions,
            web_enabled=False,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
        )
        app.transport = transport_with_fetch_wait(settings.fetch_max_wait_ms)(
            app.conf.broker_consumer, app
        )
        self.app = app
        # Program key -> counters; use_partitioner: written by key, landing on the source partition.
        self.kpis = app.Table(
            "program-kpis",
            default=kpis.empty,
            key_type=str,
            use_partitioner=True,
            help="Live counters per organization/program.",
        )
        # Event ids already counted, so redelivered events change nothing.
        self.seen = app.Table(
            "seen-events",
            default=bool,
            key_type=str,
            help="Event ids already folded into the KPIs.",
        )
        self.source = app.topic(
            *PROGRAM_TOPICS,
            key_type=bytes,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
        )
        self.dead_letters = app.topic(
            DEAD_LETTER_TOPIC, value_serializer="raw", key_serializer="raw"
        )
        app.agent(self.source, name="fold-events")(self._fold)

    def read(self, organization_id: str, program_id: str) -> dict[str, int] | None:
        value = self.kpis.get(program_key(organization_id, program_id))
        return dict(value) if value is not None else None

    async def _fold(self, stream: Any) -> None:
        # Batches: a Faust agent costs a few hundred microseconds per message, so folding one
        # event at a time caps a worker far below the event rates enterprises produce. Each
        # program's counters are written once per batch instead of once per event.
        async for batch in stream.take_events(BATCH_SIZE, within=BATCH_WAIT_SECONDS):
            touched: dict[str, tuple[str, str, dict[str, int]]] = {}
            for event in batch:
                message = event.message
                try:
                    decoded = decode_event(event.value, message.topic)
                except EventDecodeError as exc:
                    await self._dead_letter(message, str(exc))
                    continue
                env = decoded.envelope
                if self.seen[env.event_id]:
                    metrics.EVENTS_DUPLICATE.labels(message.topic, GROUP).inc()
                    continue
                # The seen table is partitioned like its source: its entry must go to the
                # changelog partition of the event it records, so make that event current.
                stream._set_current_event(event)
                self.seen[env.event_id] = True
                key = program_key(env.organization_id, env.program_id)
                if key not in touched:
                    touched[key] = (env.organization_id, env.program_id, self.kpis[key])
                org, program, counters = touched[key]
                touched[key] = (org, program, kpis.apply(counters, decoded))
                metrics.EVENTS_CONSUMED.labels(message.topic, GROUP).inc()
            for key, (org, program, counters) in touched.items():
                self.kpis[key] = counters
                for name, value in counters.items():
                    PROGRAM_KPI.labels(org, program, name).set(value)

    async def _dead_letter(self, message: Any, reason: str) -> None:
        value = dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            reason=reason,
            group=GROUP,
        )
        await self.dead_letters.send(key=message.key, value=value)
        metrics.EVENTS_DEAD_LETTERED.labels(message.topic, GROUP).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason
        )
