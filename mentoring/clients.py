"""gRPC clients for the four services, addressed by `<SERVICE>_ADDR` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from services.common.api import (
    analytics_pb2_grpc,
    engagement_pb2_grpc,
    enrollment_pb2_grpc,
    matching_pb2_grpc,
)
from services.common.config import service_address


@dataclass
class Clients:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        self._channels = {
            name: grpc.insecure_channel(service_address(name, self.env))
            for name in ("enrollment", "matching", "engagement", "analytics")
        }
        self.enrollment = enrollment_pb2_grpc.EnrollmentServiceStub(self._channels["enrollment"])
        self.matching = matching_pb2_grpc.MatchingServiceStub(self._channels["matching"])
        self.engagement = engagement_pb2_grpc.EngagementServiceStub(self._channels["engagement"])
        self.analytics = analytics_pb2_grpc.AnalyticsServiceStub(self._channels["analytics"])

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
