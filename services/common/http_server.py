"""The HTTP/JSON side of a service process: its Connect applications (services/common/connect.py)
served by an embedded uvicorn in the process's own event loop, with CORS for the configured
origins and a Connect JSON error body on every refusal. A Component, like the gRPC server:
started after it and stopped before it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import uvicorn

from services.common.connect import ServicerApp

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

# What Connect and gRPC-Web clients send and must be able to read (connectrpc.com/docs/cors).
ALLOW_HEADERS = (
    "authorization, content-type, connect-protocol-version, connect-timeout-ms, "
    "grpc-timeout, x-grpc-web, x-user-agent"
)
EXPOSE_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin"
PREFLIGHT_MAX_AGE_SECONDS = 7200

# connectrpc answers its own refusals with an empty body; the OpenAPI document promises a
# Connect error for every failure, so these get one.
_REFUSALS = {
    404: ("unimplemented", "no such RPC: the path is /mentoring.v1.<Service>/<Method>"),
    405: ("unimplemented", "use POST (GET answers read-only RPCs only)"),
    415: ("invalid_argument", "content-type must be application/json or application/proto"),
}


async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"code": code, "message": message}).encode()


class Routes:
    """The process's services by path prefix, and any plain HTTP pages a service serves beside
    its RPCs (e.g. a calendar feed) by theirs; any other path is a Connect `unimplemented`."""

    def __init__(self, apps: Sequence[ServicerApp], pages: Mapping[str, Asgi]) -> None:
        self._apps: dict[str, Asgi] = {**pages, **{app.path: app for app in apps}}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        prefix = "/" + scope["path"].lstrip("/").partition("/")[0] + "/"
        app = self._apps.get(prefix)
        if app is None:
            code, message = _REFUSALS[404]
            json_type = [(b"content-type", b"application/json")]
            await _reply(send, 404, json_type, _error_body(code, message))
            return
        await app(scope, receive, send)


class JsonRefusals:
    """Gives connectrpc's empty-bodied refusals (404, 405, 415...) a Connect JSON error."""

    def __init__(self, app: Asgi) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replaced = False

        async def send_json(message: dict[str, Any]) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                typed = any(name.lower() == b"content-type" for name, _ in headers)
                if message["status"] >= 400 and not typed:
                    code, text = _REFUSALS.get(message["status"], ("unknown", "request refused"))
                    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    kept.append((b"content-type", b"application/json"))
                    replaced = True
                    await _reply(send, message["status"], kept, _error_body(code, text))
                    return
            elif replaced:
                return  # connectrpc's own (empty) body
            await send(message)

        await self._app(scope, receive, send_json)


class Cors:
    """CORS for an allow-list of origins. Other origins get no CORS headers (a preflight from
    one is refused), so their pages cannot read any answer."""

    def __init__(self, app: Asgi, origins: Sequence[str]) -> None:
        self._app = app
        self._origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin", b"")
        allowed = origin.decode("latin-1") in self._origins
        vary = (b"vary", b"origin")
        if scope.get("method") == "OPTIONS" and b"access-control-request-method" in headers:
            if not allowed:
                await _reply(send, 403, [vary], b"")
                return
            await _reply(
                send,
                204,
                [
                    vary,
                    (b"access-control-allow-origin", origin),
                    (b"access-control-allow-methods", b"GET, POST"),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_SECONDS).encode()),
                ],
                b"",
            )
            return

        async def send_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and allowed:
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        vary,
                        (b"access-control-allow-origin", origin),
                        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
                    ],
                }
            await send(message)

        await self._app(scope, receive, send_cors)


def http_app(
    apps: Sequence[ServicerApp], cors_origins: Sequence[str], pages: Mapping[str, Asgi]
) -> Asgi:
    """The whole HTTP application of a process. `pages`: ASGI apps by first path segment, with
    slashes (`/calendar/`), answering plain HTTP beside the RPCs."""
    return Cors(JsonRefusals(Routes(apps, pages)), cors_origins)


class _Embedded(uvicorn.Server):
    """uvicorn inside a process whose owner (run_service, Faust's worker) handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """Serves an ASGI application on host:port in the running loop."""

    def __init__(self, app: Asgi, host: str, port: int, grace_seconds: float) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=max(1, round(grace_seconds)),
        )
        self._server = _Embedded(config)
        self._task: asyncio.Task[None] | None = None
        self.address = f"{host}:{port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                # serve() returns (or raises) on a bind error: say where, then fail the start.
                await self._task
                raise RuntimeError(f"HTTP/JSON API could not listen on {self.address}")
            await asyncio.sleep(0.02)
        log.info("serving HTTP/JSON on %s", self.address)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
