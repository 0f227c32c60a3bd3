"""Browser tests: Playwright driving Debian's Chromium against the portal
served by a real uvicorn (pytest-django's live_server is WSGI and would not
stream server-sent events).

Without /usr/bin/chromium these tests skip, unless REQUIRE_BROWSER_TESTS=1
(as in .ci/run), where they fail instead.
"""

import os
from pathlib import Path

import pytest

from ..conftest import free_port_in, uvicorn_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The browser tests' own ports, apart from anything else on the machine.
PORTS = range(8410, 8450)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM) or os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
        return
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is missing (apt-get install chromium); REQUIRE_BROWSER_TESTS=1 fails instead"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def asgi_server(transactional_db):
    """The portal under uvicorn in a thread of this process, so that it uses
    the test database; yields its base URL."""
    from tracking_portal.asgi import application

    with uvicorn_in_thread(application, port=free_port_in(PORTS)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread, which
    # Django takes for async code; these tests use the ORM only to set up data.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing and REQUIRE_BROWSER_TESTS=1: install it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
