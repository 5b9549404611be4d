"""The server interceptor chain: domain errors to status codes, and RPC metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from services.common import errors, metrics

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def status_for(exc: errors.DomainError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return grpc.StatusCode.UNKNOWN


class ObservabilityInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Maps DomainError to its status, hides other exceptions behind INTERNAL, records metrics."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        service, _, method = details.method.lstrip("/").rpartition("/")
        behavior = handler.unary_unary

        async def observed(request: Any, context: aio.ServicerContext) -> Any:
            started = time.perf_counter()

            def record(code: grpc.StatusCode) -> None:
                metrics.GRPC_HANDLED.labels(service, method, code.name).inc()
                metrics.GRPC_HANDLING_SECONDS.labels(service, method).observe(
                    time.perf_counter() - started
                )

            # Metrics are recorded before abort() because abort sends the status at once: a
            # client (or a scrape) that has seen the error must also see it counted.
            try:
                response = await behavior(request, context)
            except errors.DomainError as exc:
                code = status_for(exc)
                record(code)
                await context.abort(code, str(exc))
            except aio.AbortError:
                record(context.code() or grpc.StatusCode.UNKNOWN)
                raise
            except Exception:
                log.exception("%s failed", details.method)
                record(grpc.StatusCode.INTERNAL)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            record(grpc.StatusCode.OK)
            return response

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
