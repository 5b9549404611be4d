"""Unit tests' database: mongomock inside the test process, a fresh database each time.

Only unit tests use it; services and end-to-end tests run on the real MongoDB-wire server.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import mongomock

from services.common import storage
from services.common.config import Settings


def connect(settings: Settings) -> None:
    storage.connect(settings, client_class=mongomock.MongoClient)


def connect_fresh(service: str, prefix: str) -> str:
    """Connect a service's settings to a new, empty in-memory database; return its name."""
    name = f"{prefix}_{uuid.uuid4().hex}"
    connect(replace(Settings.from_env(service, {}), mongodb_database=name))
    return name
