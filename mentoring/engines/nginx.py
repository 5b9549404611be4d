"""The gateway's nginx: Debian 13's package, unpacked into the engines cache, never installed.

One plaintext port has to carry native gRPC (HTTP/2 with prior knowledge) and HTTP/1.1 JSON.
nginx tells them apart per connection only from 1.25.1 on (`http2 on;`); Debian 12 ships 1.22.
`install` therefore fetches the `nginx` package of Debian 13 (trixie, with its security
updates) with apt-get, through a private sources list and lists directory, so the system's apt
state is never touched and apt checks the archive's signatures and the package's hash as usual;
`dpkg-deb -x` unpacks it into the cache. The binary links only libraries Debian 12 has (libc,
libcrypt, libpcre2, libssl3, zlib); nginx-common (configuration files) is not needed, since
deploy/gateway/nginx.conf.template is self-contained.

`Gateway` renders that template for one run and gives the command the launcher runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from mentoring.engines.cache import DEPLOY, cache_dir
from mentoring.engines.kafka import EngineMissing

SUITE = "trixie"
# `http2 on;`: h2c and HTTP/1.1 on one listener.
MINIMUM = (1, 25, 1)
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
ARCHIVES = (
    ("http://deb.debian.org/debian", SUITE),
    ("http://deb.debian.org/debian-security", f"{SUITE}-security"),
)
# An nginx ≥ 1.25.1 of one's own (another system than Debian): used instead of the cache.
BINARY_ENV = "MENTORING_NGINX"

TEMPLATE = DEPLOY / "gateway" / "nginx.conf.template"
WWW = DEPLOY / "gateway" / "www"


def home(env: Mapping[str, str] = os.environ) -> Path:
    return cache_dir(env) / f"nginx-{SUITE}"


def binary(env: Mapping[str, str] = os.environ) -> Path:
    if explicit := env.get(BINARY_ENV, "").strip():
        return Path(explicit)
    return home(env) / "root" / "usr" / "sbin" / "nginx"


def installed(env: Mapping[str, str] = os.environ) -> bool:
    if env.get(BINARY_ENV, "").strip():
        return binary(env).is_file()
    return (home(env) / ".complete").is_file() and binary(env).is_file()


def package_version(env: Mapping[str, str] = os.environ) -> str:
    """The Debian version of the cached package (e.g. 1.26.3-3+deb13u10), or ""."""
    stamp = home(env) / ".complete"
    return stamp.read_text().strip() if stamp.is_file() else ""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise EngineMissing(
            f"{name} is not available: the gateway's nginx comes from Debian 13's package, "
            f"fetched with apt-get. Elsewhere, point {BINARY_ENV} at an nginx "
            f"{'.'.join(map(str, MINIMUM))} or newer"
        )
    return found


def _run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EngineMissing(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def _apt_options(apt: Path) -> list[str]:
    """apt-get options that confine it to `apt`: its own sources, lists, cache and (empty)
    status, the system's keyring, proxy and other settings otherwise."""
    for folder in ("lists/partial", "cache/archives/partial", "preferences.d", "sources.d"):
        (apt / folder).mkdir(parents=True, exist_ok=True)
    arch = _run([_tool("dpkg"), "--print-architecture"], "dpkg --print-architecture").strip()
    (apt / "sources.list").write_text(
        "".join(
            f"deb [arch={arch} target=Packages signed-by={KEYRING}] {uri} {suite} main\n"
            for uri, suite in ARCHIVES
        )
    )
    (apt / "status").touch()
    options = {
        "Dir::Etc::SourceList": apt / "sources.list",
        "Dir::Etc::SourceParts": apt / "sources.d",
        "Dir::Etc::Preferences": apt / "preferences",
        "Dir::Etc::PreferencesParts": apt / "preferences.d",
        "Dir::State::Lists": apt / "lists",
        "Dir::State::status": apt / "status",
        "Dir::Cache": apt / "cache",
        "Acquire::Languages": "none",
    }
    if os.geteuid() == 0:
        # apt drops to its _apt user to download, who may not write into root's cache.
        options["APT::Sandbox::User"] = "root"
    return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]


def _version(nginx: Path) -> tuple[int, ...]:
    # nginx prints its version on stderr; a library Debian 12 lacks fails here, not later.
    done = subprocess.run([str(nginx), "-v"], capture_output=True, text=True, check=False)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise EngineMissing(f"{nginx} does not run here ({done.returncode}):\n{done.stderr}")
    return tuple(int(part) for part in found.groups())


def install(env: Mapping[str, str] = os.environ) -> Path:
    """Fetch Debian 13's nginx package and unpack it into the cache, unless it is there."""
    if installed(env):
        return binary(env)
    apt_get, dpkg_deb = _tool("apt-get"), _tool("dpkg-deb")
    target = home(env)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    debs = staging / "debs"
    debs.mkdir(parents=True)
    options = _apt_options(staging / "apt")
    try:
        _run(
            [apt_get, *options, "--error-on=any", "-q", "update"],
            f"apt-get update (Debian {SUITE}'s package lists)",
        )
    except EngineMissing as exc:
        if "NO_PUBKEY" in str(exc):
            # Debian 12's debian-archive-keyring carries Debian 13's keys since 2023.3+deb12u1.
            raise EngineMissing(f"{exc}\nUpgrade the package debian-archive-keyring") from None
        raise
    done = subprocess.run(
        [apt_get, *options, "-q", "download", "nginx"],
        cwd=debs,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise EngineMissing(f"apt-get download nginx failed:\n{done.stdout}{done.stderr}")
    (deb,) = debs.glob("nginx_*.deb")
    version = _run([dpkg_deb, "--field", str(deb), "Version"], "dpkg-deb --field").strip()
    _run([dpkg_deb, "-x", str(deb), str(staging / "root")], f"dpkg-deb -x {deb.name}")
    unpacked = staging / "root" / "usr" / "sbin" / "nginx"
    if _version(unpacked) < MINIMUM:
        raise EngineMissing(f"Debian {SUITE}'s nginx {version} is older than {MINIMUM}")
    # Only the unpacked package stays: the lists (tens of MB) and the .deb are not needed again.
    shutil.rmtree(staging / "apt")
    shutil.rmtree(debs)
    (staging / ".complete").write_text(version + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return binary(env)


def render(values: Mapping[str, str], template: Path = TEMPLATE) -> str:
    """The template with its ${GATEWAY_*} placeholders filled in; every one must be given."""
    text = Template(template.read_text()).safe_substitute(values)
    directives = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    left = sorted(
        {name for line in directives for name in re.findall(r"\$\{(GATEWAY_\w+)\}", line)}
    )
    if left:
        raise ValueError(f"{template.name}: no value for {', '.join(left)}")
    return text


@dataclass(frozen=True, slots=True)
class Gateway:
    """nginx on loopback in front of the services, its configuration, temporary files and pid
    under `prefix`. `grpc` and `http` map each service to its gRPC and HTTP address."""

    prefix: Path
    port: int
    status_port: int
    grpc: Mapping[str, str]
    http: Mapping[str, str]
    www: Path = WWW

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def root(self) -> Path:
        """The prefix, absolute: nginx reads a relative `-c` path under its prefix (`make up`'s
        data folder is relative to the checkout)."""
        return self.prefix.resolve()

    @property
    def config_file(self) -> Path:
        return self.root / "conf" / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "nginx.pid"

    def values(self) -> dict[str, str]:
        values = {
            "GATEWAY_LISTEN": self.address,
            "GATEWAY_STATUS_LISTEN": f"127.0.0.1:{self.status_port}",
            "GATEWAY_WWW": str(self.www),
        }
        for name, address in self.grpc.items():
            values[f"GATEWAY_{name.upper()}"] = address
        for name, address in self.http.items():
            values[f"GATEWAY_{name.upper()}_HTTP"] = address
        return values

    def prepare(self) -> None:
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render(self.values()))

    def _argv(self, env: Mapping[str, str]) -> list[str]:
        if not installed(env):
            raise EngineMissing(
                f"The gateway's nginx (Debian {SUITE}) is not prepared: run `make engines` "
                "(or `mentoring engines install`)"
            )
        return [str(binary(env)), "-p", f"{self.root}/", "-c", str(self.config_file)]

    def _globals(self) -> str:
        # Started by root, nginx's workers would run as nobody, who may not read a private
        # checkout (the static files) or write under a private temporary folder.
        user = " user root;" if os.geteuid() == 0 else ""
        return f"pid {self.pid_file};{user}"

    def check_argv(self, env: Mapping[str, str] = os.environ) -> list[str]:
        """`nginx -t`: checks the rendered configuration."""
        return [*self._argv(env), "-e", "stderr", "-t", "-g", self._globals()]

    def start_argv(self, env: Mapping[str, str] = os.environ) -> list[str]:
        """nginx in the foreground: SIGTERM stops it at once, SIGQUIT after open requests."""
        return [*self._argv(env), "-e", "stderr", "-g", f"daemon off; {self._globals()}"]
