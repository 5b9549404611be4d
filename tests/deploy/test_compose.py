"""docker-compose.yml cannot run here (no Docker engine); check what can be checked without it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from services.common.config import DEFAULT_PORTS, Settings

ROOT = Path(__file__).resolve().parents[2]


def load(path: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / path).read_text())
    return data


def test_each_service_runs_its_console_script_on_its_default_ports() -> None:
    compose = load("docker-compose.yml")["services"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for service, (grpc_port, metrics_port) in DEFAULT_PORTS.items():
        spec = compose[service]
        (command,) = spec["command"]
        assert scripts[command] == f"services.{service}.__main__:main"
        assert f"{grpc_port}:{grpc_port}" in spec["ports"]
        assert f"{metrics_port}:{metrics_port}" in spec["ports"]
        assert spec["healthcheck"]["test"] == [
            "CMD",
            "mentoring",
            "health",
            f"127.0.0.1:{grpc_port}",
        ]
        assert spec["restart"] == "unless-stopped"


def test_service_environment_is_understood_by_settings() -> None:
    compose = load("docker-compose.yml")["services"]
    env = {k: str(v) for k, v in compose["enrollment"]["environment"].items()}
    settings = Settings.from_env("enrollment", env)
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.mongodb_uri == "mongodb://mongodb:27017"
    assert settings.bind_host == "0.0.0.0"
    assert compose["topics"]["command"] == ["mentoring", "topics"]


def test_every_container_has_a_health_check_or_runs_once() -> None:
    compose = load("docker-compose.yml")["services"]
    for name, spec in compose.items():
        assert "healthcheck" in spec or spec.get("restart") == "on-failure", name


def test_prometheus_scrapes_every_metrics_port() -> None:
    for path, host_of in (
        ("deploy/prometheus/prometheus.yml", lambda s: s),
        ("deploy/prometheus/prometheus-local.yml", lambda s: "127.0.0.1"),
    ):
        jobs = {
            job["job_name"]: job["static_configs"][0]["targets"]
            for job in load(path)["scrape_configs"]
        }
        assert jobs == {s: [f"{host_of(s)}:{m}"] for s, (_, m) in DEFAULT_PORTS.items()}, path
