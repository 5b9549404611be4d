"""Generate everything that derives from proto/, in one protoc run.

- the Python code (pinned grpcio-tools and mypy-protobuf) into services/common/pb/;
- the OpenAPI 3.1 document of the HTTP/JSON API (protoc-gen-connect-openapi, pinned in
  tools/openapi/go.mod) into deploy/gateway/www/openapi.json, with proto/openapi/*.yaml merged;
- the TypeScript messages and service descriptors (protoc-gen-es, pinned in
  examples/portal/package-lock.json) into examples/portal/src/gen/.

The two plugins are built or installed by `make codegen-tools`. `--check` regenerates into a
temporary folder and fails if any committed output differs, so stale generated code cannot land.
Never edit the generated files by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_PACKAGE = "services.common.pb"
OUT_DIR = ROOT / Path(*OUT_PACKAGE.split("."))
OPENAPI_FILE = ROOT / "deploy" / "gateway" / "www" / "openapi.json"
OPENAPI_CONFIG = PROTO_ROOT / "openapi"
TS_DIR = ROOT / "examples" / "portal" / "src" / "gen"

OPENAPI_PLUGIN = Path(sys.executable).parent / "protoc-gen-connect-openapi"
ES_PLUGIN = ROOT / "examples" / "portal" / "node_modules" / ".bin" / "protoc-gen-es"

# allow-get: GET for the NO_SIDE_EFFECTS RPCs, as the services serve them. JSON only: the
# document is for portal teams; proto bodies are for generated clients, which need no document.
OPENAPI_OPTIONS = (
    "format=json",
    "features=connectrpc",
    "allow-get",
    "content-types=json",
    f"base={OPENAPI_CONFIG / 'base.yaml'}",
    f"override={OPENAPI_CONFIG / 'override.yaml'}",
)

# protoc emits absolute imports rooted at the proto package (grpc/grpc#29390); rewrite them
# so the generated modules live inside our own package instead of claiming `mentoring`.
_IMPORT = re.compile(r"^(from|import) mentoring\.v1\b", re.MULTILINE)
# One space, then text: the proto comment's own indentation, which Markdown would keep.
_COMMENT_INDENT = re.compile(r"\n (?=\S)")


@dataclass(frozen=True)
class Outputs:
    """Where one run writes: the Python package, the OpenAPI file, the TypeScript tree."""

    pb: Path
    openapi: Path
    typescript: Path

    @classmethod
    def inside(cls, folder: Path) -> Outputs:
        return cls(folder / "pb", folder / "openapi" / OPENAPI_FILE.name, folder / "ts")


COMMITTED = Outputs(OUT_DIR, OPENAPI_FILE, TS_DIR)


def _require_plugins() -> None:
    missing = [str(p.relative_to(ROOT)) for p in (OPENAPI_PLUGIN, ES_PLUGIN) if not p.exists()]
    if missing:
        raise SystemExit(f"missing protoc plugins ({', '.join(missing)}): run `make codegen-tools`")


def _generate(out: Outputs) -> None:
    _require_plugins()
    for folder in (out.pb, out.openapi.parent, out.typescript):
        folder.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    plugin_dir = Path(sys.executable).parent
    openapi_options = ",".join((f"path={out.openapi.name}", *OPENAPI_OPTIONS))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out.pb}",
        f"--grpc_python_out={out.pb}",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out=quiet:{out.pb}",
        f"--mypy_grpc_out=quiet:{out.pb}",
        f"--plugin=protoc-gen-connect-openapi={OPENAPI_PLUGIN}",
        f"--connect-openapi_out={openapi_options}:{out.openapi.parent}",
        f"--plugin=protoc-gen-es={ES_PLUGIN}",
        f"--es_out=target=ts:{out.typescript}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    _tidy_openapi(out.openapi)
    for path in out.pb.rglob("*.py*"):
        text = path.read_text()
        path.write_text(_IMPORT.sub(rf"\1 {OUT_PACKAGE}.mentoring.v1", text))
    for package in {p.parent for p in out.pb.rglob("*.py")} | {out.pb}:
        while package != out.pb.parent:
            (package / "__init__.py").touch()
            package = package.parent


def _tidy_openapi(path: Path) -> None:
    """Proto comments keep the space after `//` on every line but the first: drop it. Written
    indented with a final newline, as the other committed files."""

    def tidy(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: _COMMENT_INDENT.sub("\n", v)
                if k == "description" and isinstance(v, str)
                else tidy(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [tidy(v) for v in node]
        return node

    document = tidy(json.loads(path.read_text()))
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in {cmp.left}: {n}" for n in cmp.left_only]
    found += [f"only in {cmp.right}: {n}" for n in cmp.right_only]
    found += [f"differs: {Path(cmp.right) / n}" for n in cmp.diff_files]
    for sub in cmp.common_dirs:
        found += _differences(Path(left) / sub, Path(right) / sub)
    return found


def _stale(fresh: Outputs, target: Outputs) -> list[str]:
    found: list[str] = []
    for new, old in ((fresh.pb, target.pb), (fresh.typescript, target.typescript)):
        found += _differences(new, old) if old.is_dir() else [f"missing: {old}"]
    if not target.openapi.is_file():
        found.append(f"missing: {target.openapi}")
    elif not filecmp.cmp(fresh.openapi, target.openapi, shallow=False):
        found.append(f"differs: {target.openapi}")
    return found


def _replace(fresh: Path, target: Path) -> None:
    """Copies beside the target, then swaps: an interrupted run leaves the old one whole."""
    staged = target.with_name(target.name + ".new")
    shutil.rmtree(staged, ignore_errors=True)
    if fresh.is_dir():
        shutil.copytree(fresh, staged)
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fresh, staged)
    staged.replace(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    parser.add_argument(
        "--generated", type=Path, default=OUT_DIR, help="Python tree to check (default: ours)"
    )
    parser.add_argument(
        "--openapi", type=Path, default=OPENAPI_FILE, help="OpenAPI file to check (default: ours)"
    )
    parser.add_argument(
        "--typescript", type=Path, default=TS_DIR, help="TypeScript tree to check (default: ours)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Outputs.inside(Path(tmp))
        # Generate everything first: a failed protoc run leaves every output as it was.
        _generate(fresh)
        if not args.check:
            for new, old in zip(
                (fresh.pb, fresh.openapi, fresh.typescript),
                (COMMITTED.pb, COMMITTED.openapi, COMMITTED.typescript),
                strict=True,
            ):
                _replace(new, old)
                print(f"generated {old.relative_to(ROOT)}")
            return 0
        stale = _stale(fresh, Outputs(args.generated, args.openapi, args.typescript))
    if stale:
        print("generated code is stale; run `make proto`:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
