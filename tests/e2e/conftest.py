"""One embedded platform per test session: the real broker and the four service processes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mentoring.clients import Clients
from mentoring.stack import Ports, Stack
from tests.e2e.support import without_auth

LOG_TAIL = 40


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Timers look for due work every half second, so expiry is testable in seconds.
    env = {**without_auth(os.environ), "SCHEDULER_INTERVAL_SECONDS": "0.5"}
    platform = Stack(Ports.free(), log_dir=tmp_path_factory.mktemp("logs"), env=env)
    try:
        platform.start_all()
        yield platform
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
    platform = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(platform, Stack):
        for managed in platform.processes:
            lines = managed.log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
            report.sections.append(
                (f"{managed.name} log (last {LOG_TAIL} lines)", "\n".join(lines))
            )
