"""The OpenAPI document against the live API: the gateway serves the committed document, and
schemathesis (PyPI), loading it from the gateway, sends generated requests for every operation
through the gateway with a coordinator token. No answer may be a server error (5xx), or break
the document's schema or content type.

Bounded: a fixed seed, a few examples per operation, no stateful phase; the run takes about
half a minute on two cores. tests/e2e/schemathesis_hooks.py points the requests at the token's
organisation and a real program."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from tests.e2e.conftest import Portal

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "deploy" / "gateway" / "www" / "openapi.json"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
MAX_EXAMPLES = 5
SEED = 1208
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def test_the_gateway_serves_the_generated_document(portal: Portal) -> None:
    served = requests.get(f"{portal.url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/json")
    assert served.json() == json.loads(OPENAPI_FILE.read_text())
    page = requests.get(f"{portal.url}/docs/", timeout=30)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(
    portal: Portal, tmp_path: Path
) -> None:
    org = f"st-{uuid.uuid4().hex[:8]}"
    token = portal.token(org, "coord-st", "coordinator")
    created = requests.post(
        f"{portal.url}/mentoring.v1.EnrollmentService/CreateProgram",
        json={"organization_id": org, "name": "Generated requests"},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "MENTORING_SCHEMATHESIS_ORGANIZATION": org,
        "MENTORING_SCHEMATHESIS_PROGRAM": created.json()["programId"],
        "NO_COLOR": "1",
    }
    # cwd: schemathesis keeps its example database (.hypothesis) there.
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{portal.url}/openapi.json",
            "--url",
            portal.url,
            "--header",
            f"Authorization: Bearer {token}",
            "--mode",
            "positive",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "2",
            "--request-timeout",
            "30",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=270,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-10_000:]
    document = json.loads(OPENAPI_FILE.read_text())
    operations = sum(len(set(item) & HTTP_METHODS) for item in document["paths"].values())
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested[1]) == operations, output[-3000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts and counts[1] == counts[2] and int(counts[1]) >= operations, output[-3000:]
