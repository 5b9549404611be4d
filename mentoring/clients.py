"""gRPC clients for the services, addressed by `<SERVICE>_ADDR` environment variables.

With a token (`mentoring --token`, or `MENTORING_TOKEN`) every call carries the metadata
`authorization: Bearer <token>`, which services with authentication on require.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc

from services.common.api import (
    analytics_pb2_grpc,
    engagement_pb2_grpc,
    enrollment_pb2_grpc,
    matching_pb2_grpc,
)
from services.common.config import service_address
from services.common.events import MAX_MESSAGE_BYTES
from services.common.pb.mentoring.v1 import notifications_pb2_grpc

TOKEN_ENV = "MENTORING_TOKEN"
# Set by `mentoring --token`; wins over MENTORING_TOKEN.
_cli_token: str | None = None


def use_token(token: str | None) -> None:
    """The token every Clients made from now on sends (the CLI's global --token option)."""
    global _cli_token
    _cli_token = token or None


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class BearerToken(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer <token>` to every unary call on a channel."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        metadata = [*(details.metadata or ()), self._header]
        return continuation(
            _CallDetails(
                details.method,
                details.timeout,
                metadata,
                details.credentials,
                details.wait_for_ready,
                details.compression,
            ),
            request,
        )


def channel(address: str, token: str | None = None) -> grpc.Channel:
    """A plaintext channel that sends the token, if any, on every call."""
    opened = grpc.insecure_channel(
        address, options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    )
    return grpc.intercept_channel(opened, BearerToken(token)) if token else opened


@dataclass
class Clients:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    token: str | None = None

    def __post_init__(self) -> None:
        self.token = self.token or _cli_token or self.env.get(TOKEN_ENV) or None
        self._channels = {
            name: channel(service_address(name, self.env), self.token)
            for name in ("enrollment", "matching", "engagement", "analytics", "notifications")
        }
        self.enrollment = enrollment_pb2_grpc.EnrollmentServiceStub(self._channels["enrollment"])
        self.matching = matching_pb2_grpc.MatchingServiceStub(self._channels["matching"])
        self.engagement = engagement_pb2_grpc.EngagementServiceStub(self._channels["engagement"])
        self.analytics = analytics_pb2_grpc.AnalyticsServiceStub(self._channels["analytics"])
        self.notifications = notifications_pb2_grpc.NotificationServiceStub(
            self._channels["notifications"]
        )

    def actor(self, named: str = "") -> str:
        """`requested_by` for audited calls. With a token the services record its subject
        (and refuse any other name), so only what the user named goes; without one, the name
        given or the local user name."""
        return named if self.token else named or getpass.getuser()

    def close(self) -> None:
        for opened in self._channels.values():
            opened.close()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
