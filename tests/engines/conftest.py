"""One MongoDB-wire server for the race tests of tests/engines, each on a database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from mentoring.stack import Ports, Stack
from services.common import storage
from services.common.config import Settings


@pytest.fixture(scope="session")
def mongodb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    platform = Stack(Ports.free(), log_dir=tmp_path_factory.mktemp("mongodb"))
    try:
        platform.start_mongodb()
        yield platform
    finally:
        platform.stop()


def connect_fresh(stack: Stack, service: str) -> None:
    """Connect the storage layer, as `service` does, to a new empty database on the server."""
    settings = Settings.from_env(service, {"MONGODB_URI": stack.mongodb.uri})
    storage.connect(replace(settings, mongodb_database=f"races_{uuid.uuid4().hex}"))
