"""The gateway's nginx from the engines cache, and the configuration the launcher gives it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mentoring.engines import nginx
from mentoring.stack import Ports, Stack
from services.common.config import DEFAULT_PORTS


def test_the_cached_nginx_tells_http2_from_http1_on_one_port() -> None:
    found = subprocess.run(
        [str(nginx.binary()), "-v"], capture_output=True, text=True, timeout=10, check=True
    )
    version = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", found.stderr)
    assert version, found.stderr
    assert tuple(int(part) for part in version.groups()) >= nginx.MINIMUM
    # The cache records the Debian package it unpacked, e.g. 1.26.3-3+deb13u12.
    assert nginx.package_version().startswith(".".join(version.groups()) + "-")


def test_a_stack_fills_in_every_placeholder_and_nginx_accepts_the_result(tmp_path: Path) -> None:
    gateway = Stack(Ports.free(), log_dir=tmp_path).gateway
    template = nginx.TEMPLATE.read_text()
    directives = "\n".join(
        line for line in template.splitlines() if not line.lstrip().startswith("#")
    )
    assert set(gateway.values()) == set(re.findall(r"\$\{(GATEWAY_\w+)\}", directives))
    # Every service of the contract is behind the gateway, whether this stack runs it or not.
    assert set(gateway.grpc) == set(gateway.http) == set(DEFAULT_PORTS)
    gateway.prepare()
    checked = subprocess.run(
        gateway.check_argv(), capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_a_missing_value_is_named(tmp_path: Path) -> None:
    values = Stack(Ports.free(), log_dir=tmp_path).gateway.values()
    del values["GATEWAY_WWW"], values["GATEWAY_MATCHING_HTTP"]
    with pytest.raises(ValueError, match="no value for GATEWAY_MATCHING_HTTP, GATEWAY_WWW"):
        nginx.render(values)


def test_an_nginx_of_ones_own_replaces_the_cached_one(tmp_path: Path) -> None:
    own = tmp_path / "nginx"
    env = {nginx.BINARY_ENV: str(own), "MENTORING_CACHE_DIR": str(tmp_path / "empty")}
    assert nginx.binary(env) == own
    assert not nginx.installed(env)
    own.touch()
    assert nginx.installed(env)
    assert not nginx.installed({"MENTORING_CACHE_DIR": str(tmp_path / "empty")})


def test_a_relative_data_folder_as_make_up_uses_starts_nginx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make up` keeps its data in .run/data, relative to the checkout.
    monkeypatch.chdir(tmp_path)
    stack = Stack(Ports.free(), log_dir=Path(".run/logs"), data_dir=Path(".run/data"))
    gateway = stack.gateway
    gateway.prepare()
    checked = subprocess.run(
        gateway.check_argv(), capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stderr
