"""The committed OpenAPI document (deploy/gateway/www/openapi.json) describes the HTTP/JSON API
the services serve: valid OpenAPI 3.1, one operation per RPC of the generated contract, GET
exactly where the proto allows it, and the bearer token. Its freshness against proto/ is
test_generated_code's job."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions
from openapi_spec_validator import validate

import services.common.pb.mentoring.v1 as contract

ROOT = Path(__file__).resolve().parents[2]
WWW = ROOT / "deploy" / "gateway" / "www"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def services() -> Iterator[ServiceDescriptor]:
    """Every service of the generated contract, new proto files included."""
    for info in pkgutil.iter_modules(contract.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{contract.__name__}.{info.name}")
            yield from module.DESCRIPTOR.services_by_name.values()


def rpcs() -> Iterator[tuple[str, MethodDescriptor]]:
    for service in services():
        for method in service.methods:
            yield f"/{service.full_name}/{method.name}", method


def read_only(method: MethodDescriptor) -> bool:
    return bool(method.GetOptions().idempotency_level == MethodOptions.NO_SIDE_EFFECTS)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((WWW / "openapi.json").read_text())
    return loaded


def operations(document: dict[str, Any], path: str) -> set[str]:
    return set(document["paths"].get(path, {})) & HTTP_METHODS


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]


def test_every_rpc_has_its_post_operation_and_nothing_else_is_described(
    document: dict[str, Any],
) -> None:
    expected = {path for path, _ in rpcs()}
    assert len(expected) > 60  # the four services and more, not an empty contract
    assert set(document["paths"]) == expected
    assert [path for path in sorted(expected) if "post" not in operations(document, path)] == []


def test_get_is_offered_exactly_for_the_rpcs_without_side_effects(
    document: dict[str, Any],
) -> None:
    described = {path: operations(document, path) for path, _ in rpcs()}
    expected = {path: {"get", "post"} if read_only(m) else {"post"} for path, m in rpcs()}
    assert described == expected
    assert any(read_only(m) for _, m in rpcs())


def test_requests_and_replies_are_the_rpc_messages_as_json(document: dict[str, Any]) -> None:
    for path, method in rpcs():
        post = document["paths"][path]["post"]
        request = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        reply = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert request == f"#/components/schemas/{method.input_type.full_name}", path
        assert reply == f"#/components/schemas/{method.output_type.full_name}", path
        error = post["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
        assert error == "#/components/schemas/connect.error", path


def test_every_operation_asks_for_the_bearer_token(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s == s | {"type": "http", "scheme": "bearer"}]
    assert bearer, schemes
    assert {name for requirement in document["security"] for name in requirement} == set(bearer)
    overridden = [
        f"{method} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and "security" in operation
    ]
    assert overridden == []


def test_proto_comments_are_the_descriptions(document: dict[str, Any]) -> None:
    tags = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    assert {s.full_name for s in services()} <= set(tags)
    assert all(tags[s.full_name] for s in services())
    create = document["paths"]["/mentoring.v1.EnrollmentService/CreateProgram"]["post"]
    assert create["description"].startswith("Creates a program")
    # The space after `//` on continuation lines is dropped.
    assert not re.search(r"\n \S", tags["mentoring.v1.EnrollmentService"])


def test_get_offers_only_the_compressions_the_services_accept(document: dict[str, Any]) -> None:
    assert document["components"]["schemas"]["compression"]["enum"] == ["identity", "gzip"]


def test_the_reference_page_loads_only_vendored_files() -> None:
    docs = WWW / "docs"
    page = (docs / "index.html").read_text()
    initializer = (docs / "initializer.js").read_text()
    linked = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "swagger-ui-bundle.js" in linked and "initializer.js" in linked
    assert [url for url in linked if not (docs / url).is_file()] == []
    assert not re.search(r"https?://", page + initializer)
    assert '"../openapi.json"' in initializer
    assert "validatorUrl: null" in initializer
