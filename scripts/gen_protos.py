"""Generate the Python code for proto/ into services/common/pb/.

One scripted step with the pinned grpcio-tools and mypy-protobuf from pyproject.toml.
`--check` regenerates into a temporary folder and fails if the committed code differs,
so stale generated code cannot land. Never edit the generated files by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_PACKAGE = "services.common.pb"
OUT_DIR = ROOT / Path(*OUT_PACKAGE.split("."))

# protoc emits absolute imports rooted at the proto package (grpc/grpc#29390); rewrite them
# so the generated modules live inside our own package instead of claiming `mentoring`.
_IMPORT = re.compile(r"^(from|import) mentoring\.v1\b", re.MULTILINE)


def _generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    plugin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in out_dir.rglob("*.py*"):
        text = path.read_text()
        path.write_text(_IMPORT.sub(rf"\1 {OUT_PACKAGE}.mentoring.v1", text))
    for package in {p.parent for p in out_dir.rglob("*.py")} | {out_dir}:
        while package != out_dir.parent:
            (package / "__init__.py").touch()
            package = package.parent


def _differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in {cmp.left}: {n}" for n in cmp.left_only]
    found += [f"only in {cmp.right}: {n}" for n in cmp.right_only]
    found += [f"differs: {Path(cmp.right) / n}" for n in cmp.diff_files]
    for sub in cmp.common_dirs:
        found += _differences(Path(left) / sub, Path(right) / sub)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    parser.add_argument(
        "--generated", type=Path, default=OUT_DIR, help="generated tree to check (default: ours)"
    )
    args = parser.parse_args()
    if not args.check:
        # Generate beside the package, then swap: a failed protoc run leaves it as it was.
        fresh = OUT_DIR.with_name(OUT_DIR.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        _generate(fresh)
        shutil.rmtree(OUT_DIR, ignore_errors=True)
        fresh.rename(OUT_DIR)
        print(f"generated {OUT_DIR.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "pb"
        _generate(fresh)
        target = args.generated
        stale = _differences(fresh, target) if target.exists() else [f"missing: {target}"]
    if stale:
        print("generated code is stale; run `make proto`:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
