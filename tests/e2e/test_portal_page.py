"""The example portal page (examples/portal) in a real browser: Debian's chromium, headless,
driven by playwright. The page is served from another origin than the gateway, so every call
is a cross-origin request the services' CORS allow-list has to admit, with a bearer token.
It lists an organisation's programs and registers a participant, whom the test then reads
over native gRPC. A page from an origin not on the list gets nothing."""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mentoring.clients import Clients
from mentoring.stack import free_port
from services.common.api import common_pb2, enrollment_pb2
from tests.e2e.conftest import Portal

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "examples" / "portal"
# The binary itself: Debian's /usr/bin/chromium is a shell wrapper adding desktop flags.
DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")
WAIT_MS = 30_000


def chromium() -> str:
    found = DEBIAN_CHROMIUM if DEBIAN_CHROMIUM.exists() else shutil.which("chromium")
    if not found:
        pytest.fail("Debian's chromium is missing: `make system-deps` installs it")
    return str(found)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int) -> ThreadingHTTPServer:
    """examples/portal as static files on 127.0.0.1:port, in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Quiet, directory=str(PORTAL)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def built() -> None:
    """The page's bundle, built from src/ (with the generated client) as `npm run build` does."""
    if not (PORTAL / "node_modules").is_dir():
        pytest.fail("examples/portal has no node_modules: run `make codegen-tools`")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=PORTAL, check=True, timeout=120)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def open_page(page: Page, origin: str, portal: Portal, org: str, token: str) -> None:
    # The fragment: the token stays out of the static server's request line.
    page.goto(f"{origin}/index.html#" + urlencode({"api": portal.url, "org": org, "token": token}))


def test_the_page_lists_programs_and_registers_a_participant(
    portal: Portal, built: None, page: Page
) -> None:
    org = f"page-{uuid.uuid4().hex[:8]}"
    token = portal.token(org, "coord-page", "coordinator")
    env = {k: v for k, v in portal.stack.client_env().items() if not k.startswith("AUTH_")}
    with Clients(env=env, token=token) as grpc_clients:
        program = grpc_clients.enrollment.CreateProgram(
            enrollment_pb2.CreateProgramRequest(organization_id=org, name="Browser cohort")
        )
        calls: list[tuple[str, str]] = []
        page.on("request", lambda r: calls.append((r.method, r.url)))
        server = serve(portal.origin_port)
        try:
            open_page(page, portal.origin, portal, org, token)
            page.click("#list")
            listed = page.wait_for_selector(f'#programs li[data-program-id="{program.program_id}"]')
            assert listed is not None and "Browser cohort" in listed.inner_text()
            page.select_option("#program", program.program_id)
            page.select_option("#role", "mentee")
            page.fill("#name", "Ada Browser")
            page.fill("#email", f"ada-{org}@example.org")
            page.fill("#skills", "python, sql")
            page.click("#register button[type=submit]")
            shown = page.wait_for_selector("#registered[data-participant-id]")
            assert shown is not None
            participant_id = shown.get_attribute("data-participant-id") or ""

            # Another organisation's programs: the API's refusal reaches the page.
            page.fill("#org", "another-org")
            page.click("#list")
            page.wait_for_selector("#status.error")
            assert "PermissionDenied" in page.inner_text("#status")
        finally:
            server.shutdown()
            server.server_close()

        stored = grpc_clients.enrollment.GetParticipant(
            enrollment_pb2.GetParticipantRequest(organization_id=org, participant_id=participant_id)
        )
    assert (stored.program_id, stored.display_name, stored.email) == (
        program.program_id,
        "Ada Browser",
        f"ada-{org}@example.org",
    )
    assert stored.role == common_pb2.ROLE_MENTEE
    assert list(stored.skills) == ["python", "sql"]
    api = [(method, url) for method, url in calls if url.startswith(portal.url)]
    # Cross-origin calls to the gateway: the read-only one as GET, the registration as POST.
    assert ("GET", "ListPrograms") in {(m, u.split("?")[0].rsplit("/", 1)[1]) for m, u in api}
    assert ("POST", f"{portal.url}/mentoring.v1.EnrollmentService/RegisterParticipant") in api


def test_a_page_from_an_origin_off_the_allow_list_gets_nothing(
    portal: Portal, built: None, page: Page
) -> None:
    org = f"page-{uuid.uuid4().hex[:8]}"
    token = portal.token(org, "coord-page", "coordinator")
    port = free_port()
    server = serve(port)
    try:
        open_page(page, f"http://127.0.0.1:{port}", portal, org, token)
        page.click("#list")
        page.wait_for_selector("#status.error")
        # The browser withholds the answer: connect-web sees a failed fetch, not a status.
        assert "PermissionDenied" not in page.inner_text("#status")
        assert page.locator("#programs li").count() == 0
    finally:
        server.shutdown()
        server.server_close()


def test_the_reference_page_renders_every_operation_from_the_gateway_alone(
    portal: Portal, page: Page
) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{portal.url}/docs/")
    page.wait_for_selector(".opblock")
    document = page.evaluate("fetch('../openapi.json').then((r) => r.json())")
    operations = sum(len(set(item) & {"get", "post"}) for item in document["paths"].values())
    assert page.locator(".opblock").count() == operations
    assert page.locator(".auth-wrapper .authorize").count() == 1
    # Vendored: nothing is fetched from a CDN or any other host.
    assert [url for url in requested if not url.startswith(portal.url)] == []
