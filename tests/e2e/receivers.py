"""Local HTTPS webhook receivers for end-to-end tests, with certificates from a test CA that the
stack's notifications service is told to trust (WEBHOOKS_CA_FILE)."""

from __future__ import annotations

import functools
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

HOST = "127.0.0.1"


@functools.cache
def test_ca() -> trustme.CA:
    return trustme.CA()


def stack_env(folder: Path) -> dict[str, str]:
    """What the test stack's notifications service needs to reach the receivers: trust in the
    test CA, loopback allowed (only it: other private ranges stay refused), and retries fast
    enough for a test (three attempts within a second)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "webhook-ca.pem"
    test_ca().cert_pem.write_to_path(str(ca_file))
    return {
        "WEBHOOKS_CA_FILE": str(ca_file),
        "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
        "WEBHOOKS_MAX_ATTEMPTS": "3",
        "WEBHOOKS_RETRY_BASE_SECONDS": "0.2",
        "WEBHOOKS_RETRY_MAX_SECONDS": "1",
        "WEBHOOKS_TIMEOUT_SECONDS": "5",
    }


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTPS server on loopback answering every POST with `status`, keeping what came."""

    status: int = 204
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://{HOST}:{self._server.server_address[1]}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(Received(dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((HOST, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        test_ca().issue_cert(HOST).configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
