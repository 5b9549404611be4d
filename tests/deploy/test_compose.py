"""docker-compose.yml cannot run here (no Docker engine); check what can be checked without it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

from mentoring.engines import kafka, nginx
from mentoring.stack import Ports
from services.common.config import DEFAULT_HTTP_PORTS, DEFAULT_PORTS, Settings
from services.common.events import MAX_MESSAGE_BYTES

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


def test_each_service_serves_http_json_on_its_default_port_for_the_gateway() -> None:
    compose = load("docker-compose.yml")["services"]
    assert set(DEFAULT_HTTP_PORTS) == set(DEFAULT_PORTS)
    for service, http_port in DEFAULT_HTTP_PORTS.items():
        spec = compose[service]
        env = {k: str(v) for k, v in spec["environment"].items()}
        settings = Settings.from_env(service, interpolated(env, {}))
        assert settings.http_port == http_port
        assert env[f"{service.upper()}_HTTP_PORT"] == str(http_port)
        # Reachable from the gateway's container, but published only through the gateway.
        assert settings.bind_host == "0.0.0.0"
        assert not any(p.startswith(f"{http_port}:") for p in spec["ports"]), service
        assert env["HTTP_CORS_ORIGINS"] == "${HTTP_CORS_ORIGINS:-}"


def test_service_environment_is_understood_by_settings() -> None:
    compose = load("docker-compose.yml")["services"]
    env = {k: str(v) for k, v in compose["enrollment"]["environment"].items()}
    settings = Settings.from_env("enrollment", interpolated(env, {}))
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
    image, tag = gateway["image"].split(":")
    assert image == "nginx"
    # `http2 on;` (gRPC and HTTP/1.1 on one port) needs the version the engine checks for.
    version = tuple(int(part) for part in tag.removesuffix("-alpine").split("."))
    assert version >= nginx.MINIMUM[: len(version)]
    assert gateway["restart"] == "unless-stopped"
    assert gateway["ports"] == ["8080:8080"]
    # The nginx image's entrypoint renders /etc/nginx/templates/*.template into
    # NGINX_ENVSUBST_OUTPUT_DIR, substituting the variables whose names match the filter.
    volumes = mounts(gateway)
    assert volumes["/etc/nginx/templates/nginx.conf.template"] == (
        "./deploy/gateway/nginx.conf.template",
        "ro",
    )
    env = {k: str(v) for k, v in gateway["environment"].items()}
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert env["GATEWAY_LISTEN"] == "8080"
    assert volumes[env["GATEWAY_WWW"]] == ("./deploy/gateway/www", "ro")
    assert nginx.WWW == ROOT / "deploy/gateway/www"
    template = (ROOT / "deploy/gateway/nginx.conf.template").read_text()
    directives = "\n".join(
        line for line in template.splitlines() if not line.lstrip().startswith("#")
    )
    placeholders = set(re.findall(r"\$\{(\w+)\}", directives))
    assert placeholders == {k for k in env if k.startswith(env["NGINX_ENVSUBST_FILTER"])}
    for service, (grpc_port, _) in DEFAULT_PORTS.items():
        assert env[f"GATEWAY_{service.upper()}"] == f"{service}:{grpc_port}"
        http_port = DEFAULT_HTTP_PORTS[service]
        assert env[f"GATEWAY_{service.upper()}_HTTP"] == f"{service}:{http_port}"
        assert gateway["depends_on"][service] == {"condition": "service_healthy"}
    status_port = env["GATEWAY_STATUS_LISTEN"]
    assert f"127.0.0.1:{status_port}/healthz" in " ".join(gateway["healthcheck"]["test"])


def _service_locations(template: str) -> dict[str, str]:
    """{path: body} of every `location /<path>/ { ... }` (bodies hold at most one block)."""
    return dict(re.findall(r"location (/[\w.]+/) \{((?:[^{}]|\{[^{}]*\})*)\}", template, re.DOTALL))


def test_gateway_routes_every_service_of_the_contract_by_content_type() -> None:
    template = (ROOT / "deploy/gateway/nginx.conf.template").read_text()
    locations = _service_locations(template)
    contract = {
        f"/mentoring.v1.{name}/"
        for proto in (ROOT / "proto/mentoring/v1").glob("*.proto")
        for name in re.findall(r"^service (\w+)", proto.read_text(), re.MULTILINE)
    }
    routes: dict[str, tuple[str, str]] = {}
    for path in contract:
        assert path in locations, f"the gateway does not route {path}"
        grpc_upstream = re.search(
            r"if \(\$api_kind = grpc\) \{\s*grpc_pass grpc://(\w+);\s*\}", locations[path]
        )
        http_upstream = re.search(r"proxy_pass http://(\w+)_http;", locations[path])
        assert grpc_upstream and http_upstream, locations[path]
        routes[path] = (grpc_upstream.group(1), http_upstream.group(1))
    # Each service's gRPC and HTTP upstreams are the same process, and every process is routed.
    assert all(grpc_name == http_name for grpc_name, http_name in routes.values()), routes
    assert {grpc_name for grpc_name, _ in routes.values()} == set(DEFAULT_PORTS)
    for service in DEFAULT_PORTS:
        for name, variable in (
            (service, service.upper()),
            (f"{service}_http", f"{service.upper()}_HTTP"),
        ):
            assert f"upstream {name} {{\n        server ${{GATEWAY_{variable}}};" in template
    for path in ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/"):
        assert locations[path].split() == ["grpc_pass", "grpc://enrollment;"]
    # One listener for HTTP/2 cleartext and HTTP/1.1, told apart per connection.
    assert re.search(r"listen \$\{GATEWAY_LISTEN\};\s*http2 on;", template)
    # application/grpc and its +proto/+json forms are gRPC; gRPC-Web and the rest are not.
    kind = re.search(
        r'map \$content_type \$api_kind \{\s*default\s+http;\s*"~\*(.+?)"\s+grpc;', template
    )
    assert kind, "the content-type map"
    grpc_types = re.compile(kind.group(1), re.IGNORECASE)
    for content_type in ("application/grpc", "application/grpc+proto", "Application/GRPC+json"):
        assert grpc_types.match(content_type), content_type
    for content_type in ("application/json", "application/grpc-web+proto", "application/proto"):
        assert not grpc_types.match(content_type), content_type


def test_gateway_drops_the_analytics_peer_header_on_both_kinds_of_call() -> None:
    template = (ROOT / "deploy/gateway/nginx.conf.template").read_text()
    server = template.split("server {", 1)[1]
    for directive in ("grpc_set_header", "proxy_set_header"):
        assert re.search(rf'^\s*{directive} X-Mentoring-Analytics-Forwarded "";', server, re.M)
        # nginx inherits *_set_header only into blocks that set none of their own.
        assert server.count(directive) == template.count(directive)
        for body in _service_locations(template).values():
            assert directive not in body


def interpolated(env: dict[str, str], host: dict[str, str]) -> dict[str, str]:
    """What compose hands a container for `${NAME:-default}` values, given the host's
    environment: the host's value unless it is unset or empty, else the default."""
    return {
        k: re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: host.get(m.group(1)) or m.group(2), v)
        for k, v in env.items()
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
