"""The browser test harness: Playwright drives Debian's Chromium against daphne.

A session-scoped fixture starts daphne in its own process on the *test* database
(the SQLite test file, or ``test_<name>`` on PostgreSQL) with the same Redis, so
the real ASGI stack serves pages and websockets. Tests create their data with
``transactional_db``: it has to be committed for the server process to see it.

Playwright's sync API keeps an asyncio loop running in the main thread from the
moment it starts until the end of the session, which makes Django's ORM raise
``SynchronousOnlyOperation``. Hence ``DJANGO_ALLOW_ASYNC_UNSAFE`` for browser
tests only, and browser tests run after every other test, so no other test ever
runs while that loop is up.

Artifacts land in ``test-artifacts/``: the server's log (``live-server*.log``)
and screenshots (``screenshots/<name>.png``). For a trace and a screenshot of a
failing test add ``--tracing retain-on-failure --screenshot only-on-failure
--output test-artifacts/playwright`` (pytest-playwright empties ``--output`` at
the start, so never point it at ``test-artifacts`` itself).

Run them: ``.venv/bin/python -m pytest tests/browser`` (or ``-m browser``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page, Request, Response, ViewportSize, expect

from tests.live import ARTIFACTS_DIR, ServerFailed, celery_worker, daphne

BROWSER_TESTS_DIR = Path(__file__).resolve().parent
SCREENSHOTS_DIR = ARTIFACTS_DIR / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")

DESKTOP: ViewportSize = {"width": 1366, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}

# A busy machine (daphne, Chromium, PostgreSQL, xdist workers, another suite) can
# take far longer than Playwright's default of 5 s for an assertion to come true;
# a passing assertion returns as soon as it holds, so the margin costs nothing.
expect.set_options(timeout=30_000)


def _is_browser_test(item: pytest.Item) -> bool:
    return BROWSER_TESTS_DIR in Path(str(item.path)).resolve().parents


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark the tests in this folder ``browser`` (early enough for ``-m browser``)."""
    if _is_browser_test(item):
        item.add_marker(pytest.mark.browser)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests after all others (after pytest-django's reordering).

    The hook sees every collected item, so it only moves those in this folder.
    Running them last keeps Playwright's event loop (alive until the session
    ends) away from the ORM calls of ordinary tests.
    """
    browser_items = [item for item in items if _is_browser_test(item)]
    if browser_items:
        items[:] = [item for item in items if not _is_browser_test(item)] + browser_items


# --- Chromium -----------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Debian's Chromium; skips the browser tests without it, except on CI (fails)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        message = (
            f"{CHROMIUM} is missing: browser tests need Debian's Chromium "
            "(`apt-get install chromium`; never `playwright install`)."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], chromium_executable: Path
) -> dict[str, Any]:
    """pytest-playwright's launch options, pointed at Debian's Chromium."""
    return {
        **browser_type_launch_args,
        "executable_path": str(chromium_executable),
        "headless": browser_type_launch_args.get("headless", True),
        "args": [
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-gpu",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """Every context starts at desktop size; tests resize for the phone layout."""
    return {**browser_context_args, "viewport": DESKTOP, "locale": "en-US"}


# --- The server ---------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server_url(
    chromium_executable: Path,
    django_db_setup: None,
    django_db_blocker: Any,
) -> Iterator[str]:
    """Daphne in a subprocess on the test database; yields ``http://127.0.0.1:PORT``."""
    try:
        # The journeys sign in far more often than 30 times a minute from one address.
        with daphne("live-server", extra_env={"KONTOR_LOGIN_RATE_PER_MINUTE": "10000"}) as url:
            yield url
    except ServerFailed as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def live_worker(live_server_url: str) -> Iterator[Path]:
    """A Celery worker beside the live server, as in the real stack (exports,
    snapshots); yields its log. Tasks for it: ``apply_async(queue=TASK_QUEUE)``.

    Function-scoped, so request it after the fixtures that empty the database:
    it stops before they do."""
    try:
        with celery_worker("live-worker") as log:
            yield log
    except ServerFailed as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def base_url(live_server_url: str) -> str:
    """Relative ``page.goto("/…")`` calls go to the live server.

    pytest-base-url's autouse ``_verify_url`` asks for this fixture, so the test
    database and the server are ready before Playwright starts its event loop.
    """
    return live_server_url


# --- Per test -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _allow_async_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the ORM run while Playwright's event loop is up (browser tests only)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser_db(_allow_async_unsafe: None, transactional_db: None) -> None:
    """Committed data the server process can see.

    Requesting the database through this fixture sets it up after
    ``DJANGO_ALLOW_ASYNC_UNSAFE``, so its flush at teardown still runs with it.
    """


def watch_console(page: Page) -> list[str]:
    """Collect the page's console errors, uncaught exceptions and failed requests.

    CSP violations and resources that answer 404 show up as console errors in
    Chromium; responses of 400 and more are listed as well, with their URL.
    """
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location.get("url", "") if message.location else ""
            problems.append(f"console error: {message.text}" + (f" ({location})" if location else ""))

    def on_page_error(error: Error) -> None:
        problems.append(f"uncaught exception: {error}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def on_request_failed(request: Request) -> None:
        # A navigation cancels requests still in flight (the favicon, say):
        # that is the browser's doing, not a failure of the page.
        if request.failure and "ERR_ABORTED" in request.failure:
            return
        problems.append(f"request failed: {request.method} {request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    return problems


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """The problems ``watch_console`` sees on the ``page`` fixture; assert it is empty."""
    return watch_console(page)


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """``screenshot(page, "name")`` saves ``test-artifacts/screenshots/name.png``.

    CSS transitions are finished first: after ``page.set_viewport_size`` the
    phone layout's sidebar would otherwise be caught half-way off screen.
    """

    def save(page: Page, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    return save
