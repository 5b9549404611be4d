"""Prometheus metrics shared by every service, and the /metrics endpoint."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PRODUCED = Counter(
    "mentoring_events_produced_total", "Events published, by topic.", ["topic"]
)
EVENTS_CONSUMED = Counter(
    "mentoring_events_consumed_total",
    "Events consumed and handled, by topic and consumer group.",
    ["topic", "group"],
)
EVENTS_DUPLICATE = Counter(
    "mentoring_events_duplicate_total",
    "Redelivered events ignored because their event id was already handled.",
    ["topic", "group"],
)
EVENTS_DEAD_LETTERED = Counter(
    "mentoring_events_dead_lettered_total",
    "Messages sent to the dead-letter topic, by source topic and consumer group.",
    ["topic", "group"],
)
EVENTS_RETRIED = Counter(
    "mentoring_events_retried_total",
    "Batches handled again after a failure, by consumer group and cause: an outage (database "
    "or broker away, retried until it passes) or an error (retried a few times, then the "
    "failing message is dead-lettered).",
    ["group", "cause"],
)
OUTBOX_RELAYED = Counter(
    "mentoring_outbox_relayed_total",
    "Events the outbox relay published because their writer stopped between its commit and "
    "the broker's acknowledgement (a crash, or the broker away), by topic.",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "mentoring_consumer_lag_messages",
    "Messages behind the end of the partition, per assigned partition.",
    ["topic", "partition", "group"],
)
ASSIGNED_PARTITIONS = Gauge(
    "mentoring_consumer_assigned_partitions",
    "Partitions this process currently owns, by topic and consumer group.",
    ["topic", "group"],
)


def start_metrics_server(host: str, port: int) -> None:
    start_http_server(port, addr=host)
