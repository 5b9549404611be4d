"""Schemathesis hooks for test_openapi_live (loaded through SCHEMATHESIS_HOOKS).

Generated requests would name random organisations and programs, and stop at the access check
(403) or at the lookup (404). Every request that names an organisation or a program is pointed
at the ones the test's coordinator token is for, so the servicers' validation and logic get the
generated data."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from typing import Any

import schemathesis
from google.protobuf.descriptor import Descriptor

import services.common.pb.mentoring.v1 as contract

ORGANIZATION = os.environ["MENTORING_SCHEMATHESIS_ORGANIZATION"]
PROGRAM = os.environ["MENTORING_SCHEMATHESIS_PROGRAM"]


def _requests() -> dict[str, Descriptor]:
    """The request message of every RPC, by its HTTP path."""
    found = {}
    for info in pkgutil.iter_modules(contract.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{contract.__name__}.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    found[f"/{service.full_name}/{method.name}"] = method.input_type
    return found


REQUESTS = _requests()


def _pointed(message: dict[str, Any], request: Descriptor) -> dict[str, Any]:
    fields = request.fields_by_name
    pinned = {"organization_id": ORGANIZATION, "program_id": PROGRAM}
    return {
        **message,
        **{fields[name].json_name: value for name, value in pinned.items() if name in fields},
    }


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    request = REQUESTS.get(case.path)
    if request is None:
        return case
    if isinstance(case.body, dict):
        case.body = _pointed(case.body, request)
    elif case.query and isinstance(case.query.get("message"), str):
        # GET carries the request as JSON in the query string; other encodings stay as generated.
        try:
            message = json.loads(case.query["message"])
        except ValueError:
            return case
        if isinstance(message, dict):
            case.query["message"] = json.dumps(_pointed(message, request))
    return case


# A deadline this short can run out in the gateway or the loop before the servicer answers.
SHORT_DEADLINE_MS = 1000


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keeps every failure but one: a short Connect-Timeout-Ms the request itself set running
    out. The protocol answers that with deadline_exceeded (504); a deadline of a few
    milliseconds is the caller's choice, not a fault of the server."""
    deadlines = [v for k, v in (case.headers or {}).items() if k.lower() == "connect-timeout-ms"]
    short = any(str(v).isdigit() and int(v) < SHORT_DEADLINE_MS for v in deadlines)
    expired = response.status_code == 504 and b'"deadline_exceeded"' in response.content
    return not (short and expired)
