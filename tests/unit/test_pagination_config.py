"""Keyset pagination tokens and page sizes; settings from the environment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.config import DEFAULT_HTTP_PORTS, DEFAULT_PORTS, Settings, service_address
from services.common.errors import InvalidArgument
from services.common.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_token,
    encode_token,
    page_size,
)

# --- page_size -----------------------------------------------------------------------------


def test_page_size_zero_means_the_default() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE == 100


@pytest.mark.parametrize("size", [1, 2, 100, MAX_PAGE_SIZE])
def test_page_size_in_range_is_kept(size: int) -> None:
    assert MAX_PAGE_SIZE == 500
    assert page_size(size) == size


@pytest.mark.parametrize("size", [MAX_PAGE_SIZE + 1, 10_000, -1])
def test_page_size_out_of_range(size: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_size(size)
    assert caught.value.field == "page_size"
    assert str(caught.value).startswith("page_size: ")


# --- page tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["a", "0b6f6c1e-1f0e-4f0a-9f2a-3c1d2e4f5a6b", "with/slash+plus=", "ünïcode ✓"]
)
def test_token_round_trip(key: str) -> None:
    token = encode_token(key)
    assert token
    assert token != key
    assert decode_token(token) == key


@given(st.text(min_size=1, max_size=80))
def test_token_round_trip_any_key(key: str) -> None:
    assert decode_token(encode_token(key)) == key


def test_an_empty_token_means_the_first_page() -> None:
    assert decode_token("") is None


@pytest.mark.parametrize(
    "token",
    [
        "abc",  # bad padding
        "_w==",  # valid base64 of b"\xff": not UTF-8
        "a",
    ],
)
def test_a_bad_token_is_an_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_token(token)
    assert caught.value.field == "page_token"


@pytest.mark.parametrize("token", ["!!!!", "****"])
def test_a_token_of_non_base64_characters_is_an_invalid_argument(token: str) -> None:
    # No token this API returns is made of these characters; silently treating one as
    # "first page" (b64decode drops them and yields "") restarts a client's listing.
    with pytest.raises(InvalidArgument) as caught:
        decode_token(token)
    assert caught.value.field == "page_token"


# --- Settings.from_env ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "grpc_port", "metrics_port"),
    [
        ("enrollment", 50051, 9101),
        ("matching", 50052, 9102),
        ("engagement", 50053, 9103),
        ("analytics", 50054, 9104),
    ],
)
def test_settings_defaults(service: str, grpc_port: int, metrics_port: int) -> None:
    s = Settings.from_env(service, {})
    assert s.service == service
    assert (s.grpc_port, s.metrics_port) == (grpc_port, metrics_port)
    assert s.bind_host == "127.0.0.1"
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.mongodb_uri == "mongodb://127.0.0.1:27017/"
    assert s.mongodb_database == f"mentoring_{service}"
    assert s.topic_partitions == 6
    assert s.fetch_max_wait_ms == 100
    assert s.fetch_min_bytes == 65536
    assert s.shutdown_grace_seconds == 5.0


def test_default_ports_are_distinct() -> None:
    assert set(DEFAULT_HTTP_PORTS) == set(DEFAULT_PORTS)
    ports = [p for pair in DEFAULT_PORTS.values() for p in pair] + list(DEFAULT_HTTP_PORTS.values())
    assert len(ports) == len(set(ports)) == 3 * len(DEFAULT_PORTS)


def test_cors_origins_are_a_checked_list() -> None:
    env = {"HTTP_CORS_ORIGINS": " https://portal.example , http://localhost:5173/ "}
    assert Settings.from_env("engagement", env).cors_origins == (
        "https://portal.example",
        "http://localhost:5173",
    )
    assert Settings.from_env("engagement", {}).cors_origins == ()
    with pytest.raises(SystemExit, match=r"HTTP_CORS_ORIGINS: 'portal\.example' is not an origin"):
        Settings.from_env("engagement", {"HTTP_CORS_ORIGINS": "portal.example"})


def test_settings_overrides() -> None:
    env = {
        "ENROLLMENT_GRPC_PORT": "6001",
        "ENROLLMENT_METRICS_PORT": " 7001 ",
        "BIND_HOST": "0.0.0.0",
        "KAFKA_BOOTSTRAP_SERVERS": "broker:19092",
        "KAFKA_TOPIC_PARTITIONS": "12",
        "KAFKA_FETCH_MAX_WAIT_MS": "5",
        "KAFKA_FETCH_MIN_BYTES": "1",
        "MONGODB_URI": "mongodb://db:27017",
        "ENROLLMENT_MONGODB_DATABASE": "custom_db",
        "SHUTDOWN_GRACE_SECONDS": "1.5",
        # Another service's variables do not leak in.
        "MATCHING_GRPC_PORT": "6002",
    }
    s = Settings.from_env("enrollment", env)
    assert s.grpc_port == 6001
    assert s.metrics_port == 7001
    assert s.bind_host == "0.0.0.0"
    assert s.kafka_bootstrap_servers == "broker:19092"
    assert s.topic_partitions == 12
    assert s.fetch_max_wait_ms == 5
    assert s.fetch_min_bytes == 1
    assert s.mongodb_uri == "mongodb://db:27017"
    assert s.mongodb_database == "custom_db"
    assert s.shutdown_grace_seconds == 1.5
    assert Settings.from_env("matching", env).grpc_port == 6002
    assert Settings.from_env("engagement", env).grpc_port == 50053


def test_blank_port_falls_back_to_the_default() -> None:
    assert Settings.from_env("analytics", {"ANALYTICS_GRPC_PORT": "  "}).grpc_port == 50054


def test_empty_mongodb_uri_means_the_local_server() -> None:
    settings = Settings.from_env("matching", {"MONGODB_URI": " "})
    assert settings.mongodb_uri == "mongodb://127.0.0.1:27017/"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENROLLMENT_GRPC_PORT", "fifty"),
        ("ENROLLMENT_METRICS_PORT", "91.5"),
        ("KAFKA_TOPIC_PARTITIONS", "six"),
    ],
)
def test_a_non_integer_gives_a_clear_system_exit(name: str, value: str) -> None:
    with pytest.raises(SystemExit) as caught:
        Settings.from_env("enrollment", {name: value})
    message = str(caught.value.code)
    assert name in message
    assert repr(value) in message
    assert "integer" in message


def test_settings_are_immutable() -> None:
    s = Settings.from_env("enrollment", {})
    with pytest.raises(AttributeError):
        s.grpc_port = 1  # type: ignore[misc]


def test_service_address() -> None:
    assert service_address("matching", {}) == "127.0.0.1:50052"
    assert service_address("matching", {"MATCHING_ADDR": "m:1"}) == "m:1"
