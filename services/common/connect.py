"""Every gRPC service of a process also as HTTP/JSON, in the Connect protocol.

Nothing here is per RPC: the endpoints come from the service descriptors (the generated pb2),
the handlers from the generated `add_XServicer_to_server` (captured, not rewritten), and every
call runs through the very interceptor objects the gRPC server runs (errors to status codes,
metrics, authentication, the access policy), so an HTTP caller meets the same tokens, checks,
validation and metric labels as a gRPC one.

`POST /mentoring.v1.<Service>/<Method>` takes JSON (proto3 JSON, either field spelling) or
binary protobuf; read-only RPCs (`idempotency_level = NO_SIDE_EFFECTS`) also answer GET.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc import aio

from services.common import peers

# gRPC's CANCELLED is Connect's "canceled"; every other code has the same name.
CONNECT_CODES = {
    status: Code.CANCELED if status is grpc.StatusCode.CANCELLED else Code[status.name]
    for status in grpc.StatusCode
    if status is not grpc.StatusCode.OK
}
_IDEMPOTENCY = {
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS: IdempotencyLevel.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT: IdempotencyLevel.IDEMPOTENT,
}
# Request headers that never become gRPC metadata: the wire protocol's own, and the analytics
# workers' peer token, which only another worker may send (over gRPC).
_NOT_METADATA = (peers.FORWARDED, "connect-", "grpc-", "content-", "accept-")

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _CallDetails:
    """What grpc.aio hands its interceptors (grpc.HandlerCallDetails)."""

    method: str
    invocation_metadata: Metadata


class _HandlerCapture:
    """Stands in for the aio.Server that the generated add_XServicer_to_server registers on."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        """The same handlers also come through add_registered_method_handlers."""

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.handlers.update({f"/{service}/{name}": h for name, h in handlers.items()})


class HttpServicerContext:
    """The part of aio.ServicerContext that the interceptors and servicers use, for a call that
    came over HTTP (tests/unit/test_connect.py keeps the two in step)."""

    def __init__(self, request: RequestContext[Any, Any], metadata: Metadata) -> None:
        self._request = request
        self._metadata = metadata
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> None:
        self._code, self._details = code, details
        raise aio.AbortError()

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        for key, value in metadata:
            self._request.response_trailers[key] = value

    def time_remaining(self) -> float | None:
        remaining = self._request.timeout_ms
        return None if remaining is None else remaining / 1000

    def peer(self) -> str:
        return f"ipv4:{self._request.client_address}"

    def failed(self) -> bool:
        return self._code not in (None, grpc.StatusCode.OK)

    def error(self) -> ConnectError:
        code = self._code or grpc.StatusCode.UNKNOWN
        return ConnectError(CONNECT_CODES.get(code, Code.UNKNOWN), self._details)


def _method_info(method: MethodDescriptor) -> MethodInfo[Any, Any]:
    if method.client_streaming or method.server_streaming:
        raise RuntimeError(f"{method.full_name}: only unary RPCs are served over HTTP")
    return MethodInfo(
        name=method.name,
        service_name=method.containing_service.full_name,
        input=message_factory.GetMessageClass(method.input_type),
        output=message_factory.GetMessageClass(method.output_type),
        idempotency_level=_IDEMPOTENCY.get(
            method.GetOptions().idempotency_level, IdempotencyLevel.UNKNOWN
        ),
        stream_type=StreamType.UNARY,
    )


def metadata_of(headers: Iterable[tuple[str, str]]) -> Metadata:
    """The request headers a servicer may see as gRPC metadata (lower-case names)."""
    lowered = ((name.lower(), value) for name, value in headers)
    return tuple((name, value) for name, value in lowered if not name.startswith(_NOT_METADATA))


class ServicerApp(ConnectASGIApplication[Any]):
    """One grpc.aio servicer as a Connect ASGI application, behind the given grpc.aio
    interceptors (outermost first)."""

    def __init__(
        self,
        service: ServiceDescriptor,
        servicer: Any,
        add_to_server: Callable[[Any, Any], None],
        interceptors: Sequence[aio.ServerInterceptor] = (),
    ) -> None:
        capture = _HandlerCapture()
        add_to_server(servicer, capture)
        # Names unlike ConnectASGIApplication's own (_service, _endpoints, _interceptors...):
        # a subclass shares its private attributes.
        self._grpc_service = service
        self._grpc_handlers = capture.handlers
        self._grpc_interceptors = tuple(interceptors)
        endpoints = self._http_endpoints()
        super().__init__(
            service=servicer,
            endpoints=lambda _: endpoints,
            # Strict JSON: a misspelt field is refused naming it, never silently dropped.
            codecs=[
                google_protobuf_binary_codec(),
                google_protobuf_json_codec(ignore_unknown_fields=False),
            ],
        )

    @property
    def path(self) -> str:
        """The path prefix of this service's RPCs."""
        return f"/{self._grpc_service.full_name}/"

    def _http_endpoints(self) -> dict[str, Any]:
        # Any: connectrpc types these as its private EndpointUnary.
        endpoints: dict[str, Any] = {}
        for method in self._grpc_service.methods:
            info = _method_info(method)
            rpc = f"/{self._grpc_service.full_name}/{method.name}"
            endpoints[rpc] = Endpoint.unary(
                method=info, function=functools.partial(self._call, rpc, info)
            )
        return endpoints

    async def _call(
        self, rpc: str, info: MethodInfo[Any, Any], request: Any, ctx: RequestContext[Any, Any]
    ) -> Any:
        metadata = metadata_of(ctx.request_headers.allitems())
        context = HttpServicerContext(ctx, metadata)

        async def handler_of(_: Any) -> grpc.RpcMethodHandler:
            return self._grpc_handlers[rpc]

        chain: Callable[[Any], Awaitable[grpc.RpcMethodHandler]] = handler_of
        for interceptor in reversed(self._grpc_interceptors):
            chain = functools.partial(interceptor.intercept_service, chain)
        try:
            handler = await chain(_CallDetails(rpc, metadata))
            reply = await handler.unary_unary(request, context)
        except aio.AbortError:
            raise context.error() from None
        if context.failed():
            raise context.error()
        # The chain may hand back serialized bytes (a forwarded analytics call's reply, see
        # services/common/auth.py), though HTTP callers cannot forward.
        return info.output.FromString(reply) if isinstance(reply, bytes) else reply
