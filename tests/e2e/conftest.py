"""One embedded platform per test session (the real broker and the service processes), and one
with authentication on behind the gateway for the portal-facing tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mentoring.clients import Clients
from mentoring.stack import Ports, Stack, free_port
from mentoring.tokens import mint
from services.common.config import AuthSettings
from tests.e2e import receivers
from tests.e2e.support import without_auth

LOG_TAIL = 40


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Timers look for due work every half second, so expiry is testable in seconds.
    env = {
        **without_auth(os.environ),
        "SCHEDULER_INTERVAL_SECONDS": "0.5",
        # Webhooks reach the tests' HTTPS receivers (tests/e2e/receivers.py).
        **receivers.stack_env(tmp_path_factory.mktemp("webhooks")),
    }
    platform = Stack(Ports.free(), log_dir=tmp_path_factory.mktemp("logs"), env=env)
    try:
        platform.start_all()
        yield platform
    finally:
        platform.stop()


@dataclass(frozen=True)
class Portal:
    """A platform as enterprise portals reach it: authentication on, every service behind the
    gateway, and one browser origin allowed (CORS)."""

    stack: Stack
    auth: AuthSettings
    # Where a portal page would be served from: the one origin the services allow.
    origin_port: int

    @property
    def url(self) -> str:
        return f"http://{self.stack.gateway.address}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.origin_port}"

    def token(self, organization: str, subject: str, *roles: str) -> str:
        return mint(self.auth, organization=organization, subject=subject, roles=roles)


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    auth_env = {
        "AUTH_JWT_SECRET": f"portal-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "AUTH_JWT_ISSUER": "mentoring-e2e",
        "AUTH_JWT_AUDIENCE": "mentoring",
    }
    origin_port = free_port()
    env = {
        **without_auth(os.environ),
        **auth_env,
        "HTTP_CORS_ORIGINS": f"http://127.0.0.1:{origin_port}",
    }
    platform = Stack(Ports.free(), log_dir=tmp_path_factory.mktemp("portal-logs"), env=env)
    try:
        platform.start_all()
        yield Portal(platform, AuthSettings.from_env(auth_env), origin_port)
    finally:
        platform.stop()


@pytest.fixture(scope="session")
def clients(stack: Stack) -> Iterator[Clients]:
    with Clients(env=stack.client_env()) as session_clients:
        yield session_clients


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """A failed test's report carries the tail of every service log: on CI, where the log
    directory is gone with the runner, that is the only record of what the services saw."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    funcargs = getattr(item, "funcargs", {})
    platform = funcargs.get("stack") or getattr(funcargs.get("portal"), "stack", None)
    if report.failed and isinstance(platform, Stack):
        for managed in platform.processes:
            lines = managed.log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
            report.sections.append(
                (f"{managed.name} log (last {LOG_TAIL} lines)", "\n".join(lines))
            )
