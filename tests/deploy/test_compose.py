"""docker-compose.yml cannot run here (no Docker engine); check what can be checked without it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

from mentoring.engines import kafka
from mentoring.stack import Ports
from services.common.config import DEFAULT_PORTS, Settings
from services.common.kafka import MAX_MESSAGE_BYTES

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
    # A replica set: the outbox's transactions need one.
    assert settings.mongodb_uri == "mongodb://mongodb:27017/?replicaSet=rs0"
    assert compose["mongodb"]["command"][:2] == ["--replSet", "rs0"]
    assert settings.bind_host == "0.0.0.0"
    assert compose["topics"]["command"] == ["mentoring", "topics"]


def test_every_container_has_a_health_check_or_runs_once() -> None:
    compose = load("docker-compose.yml")["services"]
    for name, spec in compose.items():
        assert "healthcheck" in spec or spec.get("restart") == "on-failure", name


def test_prometheus_scrapes_every_metrics_port() -> None:
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in load("deploy/prometheus/prometheus.yml")["scrape_configs"]
    }
    assert jobs == {s: [f"{s}:{m}"] for s, (_, m) in DEFAULT_PORTS.items()}


def test_local_prometheus_scrapes_what_make_up_starts() -> None:
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in load("deploy/prometheus/prometheus-local.yml")["scrape_configs"]
    }
    ports = Ports.from_env({})
    expected = {s: [f"127.0.0.1:{m}"] for s, m in ports.metrics.items()}
    # `make up` runs two matching workers (mentoring up --matching-workers).
    expected["matching"].append(f"127.0.0.1:{ports.extra_worker('matching', 1)[1]}")
    assert jobs == expected


def test_compose_runs_the_kafka_the_tests_run() -> None:
    image = load("docker-compose.yml")["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{kafka.VERSION}"
    pom = ElementTree.parse(ROOT / "deploy/kafka/pom.xml").getroot()
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    assert pom.findtext("m:properties/m:kafka.version", namespaces=namespace) == kafka.VERSION


def test_every_broker_takes_the_largest_message_the_services_send() -> None:
    environment = load("docker-compose.yml")["services"]["kafka"]["environment"]
    assert int(environment["KAFKA_MESSAGE_MAX_BYTES"]) == MAX_MESSAGE_BYTES
    assert (
        f"message.max.bytes={MAX_MESSAGE_BYTES}\n" in kafka.KafkaNode(Path("/x"), 1, 2).properties()
    )


def mounts(spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """A service's volumes as {container path: (host path or volume, mode)}."""
    found = {}
    for volume in spec.get("volumes", []):
        source, target, *mode = volume.split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


def test_every_container_has_a_health_check_or_restart_policy() -> None:
    compose = load("docker-compose.yml")["services"]
    for name, spec in compose.items():
        assert "healthcheck" in spec or "restart" in spec, name
        if "healthcheck" in spec:
            assert spec["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_prometheus_loads_the_rules_mounted_beside_its_config() -> None:
    prometheus = load("docker-compose.yml")["services"]["prometheus"]
    volumes = mounts(prometheus)
    config_dir = "/etc/prometheus"
    assert volumes[f"{config_dir}/prometheus.yml"] == ("./deploy/prometheus/prometheus.yml", "ro")
    for path in ("deploy/prometheus/prometheus.yml", "deploy/prometheus/prometheus-local.yml"):
        rule_files = load(path)["rule_files"]
        assert rule_files == ["rules.yml"], path
        # Prometheus resolves relative rule files against the config file's directory.
        assert (ROOT / path).parent.joinpath(rule_files[0]).is_file()
    assert volumes[f"{config_dir}/rules.yml"] == ("./deploy/prometheus/rules.yml", "ro")
    assert volumes["/prometheus"][0] == "prometheus-data"


def test_grafana_is_provisioned_from_the_repository() -> None:
    compose = load("docker-compose.yml")
    grafana = compose["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana-oss:")
    assert "3000:3000" in grafana["ports"]
    assert grafana["restart"] == "unless-stopped"
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    assert grafana["depends_on"]["prometheus"] == {"condition": "service_healthy"}
    volumes = mounts(grafana)
    assert volumes["/etc/grafana/provisioning"] == ("./deploy/grafana/provisioning", "ro")
    (provider,) = load("deploy/grafana/provisioning/dashboards/dashboards.yml")["providers"]
    dashboards_dir = provider["options"]["path"]
    assert volumes[dashboards_dir] == ("./deploy/grafana/dashboards", "ro")
    assert {p.name for p in (ROOT / "deploy/grafana/dashboards").glob("*.json")} >= {
        "program-overview.json",
        "platform-operations.json",
    }
    env = grafana["environment"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(f"{dashboards_dir}/")
    assert (ROOT / "deploy/grafana/dashboards" / home.rsplit("/", 1)[1]).is_file()
    # The password comes from the environment; without one, visitors may only view.
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    # The data source reaches the compose Prometheus; the dashboards use its uid.
    (source,) = load("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert source["url"] == "${PROMETHEUS_URL}"
    assert env["PROMETHEUS_URL"] == "http://prometheus:9090"
    assert "9090:9090" in compose["services"]["prometheus"]["ports"]
    assert source["uid"] == "prometheus"
    assert "grafana-data" in compose["volumes"]


def test_gateway_renders_its_template_with_the_compose_services() -> None:
    compose = load("docker-compose.yml")["services"]
    gateway = compose["gateway"]
    assert gateway["image"].startswith("nginx:")
    assert gateway["restart"] == "unless-stopped"
    assert "8080:8080" in gateway["ports"]
    # The nginx image's entrypoint renders /etc/nginx/templates/*.template into
    # NGINX_ENVSUBST_OUTPUT_DIR, substituting the variables whose names match the filter.
    assert mounts(gateway)["/etc/nginx/templates/nginx.conf.template"] == (
        "./deploy/gateway/nginx.conf.template",
        "ro",
    )
    env = {k: str(v) for k, v in gateway["environment"].items()}
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert env["GATEWAY_LISTEN"] == "8080"
    template = (ROOT / "deploy/gateway/nginx.conf.template").read_text()
    directives = "\n".join(
        line for line in template.splitlines() if not line.lstrip().startswith("#")
    )
    placeholders = set(re.findall(r"\$\{(\w+)\}", directives))
    assert placeholders == {k for k in env if k.startswith(env["NGINX_ENVSUBST_FILTER"])}
    for service, (grpc_port, _) in DEFAULT_PORTS.items():
        assert env[f"GATEWAY_{service.upper()}"] == f"{service}:{grpc_port}"
        assert gateway["depends_on"][service] == {"condition": "service_healthy"}
    status_port = env["GATEWAY_STATUS_LISTEN"]
    assert f"127.0.0.1:{status_port}/healthz" in " ".join(gateway["healthcheck"]["test"])


def test_gateway_routes_every_grpc_service_of_the_contract() -> None:
    template = (ROOT / "deploy/gateway/nginx.conf.template").read_text()
    routes = dict(re.findall(r"location (/[\w.]+/) \{\s*grpc_pass grpc://(\w+);", template))
    contract = {
        f"/mentoring.v1.{name}/": name.removesuffix("Service").lower()
        for proto in (ROOT / "proto/mentoring/v1").glob("*.proto")
        for name in re.findall(r"^service (\w+)", proto.read_text(), re.MULTILINE)
    }
    assert set(contract.values()) == set(DEFAULT_PORTS)
    assert {path: routes.get(path) for path in contract} == contract
    assert routes["/grpc.health.v1.Health/"] == "enrollment"
    assert routes["/grpc.reflection.v1alpha.ServerReflection/"] == "enrollment"
    for service in DEFAULT_PORTS:
        assert f"upstream {service} {{\n        server ${{GATEWAY_{service.upper()}}};" in template
    assert re.search(r"listen \$\{GATEWAY_LISTEN\} http2;", template)


def interpolated(env: dict[str, str], host: dict[str, str]) -> dict[str, str]:
    """What compose hands a container for `${NAME:-}` values, given the host's environment."""
    return {
        k: re.sub(r"\$\{(\w+):-\}", lambda m: host.get(m.group(1), ""), v) for k, v in env.items()
    }


def test_services_take_authentication_settings_from_the_host() -> None:
    compose = load("docker-compose.yml")["services"]
    for service in DEFAULT_PORTS:
        spec = compose[service]
        env = {k: str(v) for k, v in spec["environment"].items()}
        for name in ("AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY_FILE", "AUTH_JWT_ISSUER"):
            assert env[name] == f"${{{name}:-}}", (service, name)
        assert mounts(spec)["/etc/mentoring/auth"] == ("./deploy/auth", "ro")
        assert not Settings.from_env(service, interpolated(env, {})).auth.enabled
        on = Settings.from_env(service, interpolated(env, {"AUTH_JWT_SECRET": "x" * 32})).auth
        assert on.enabled and on.jwt_secret == "x" * 32
    assert (ROOT / "deploy/auth/README.md").is_file()
