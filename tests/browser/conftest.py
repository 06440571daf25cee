"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Playwright never downloads a browser here: it launches /usr/bin/chromium (scripts/ensure-chromium,
run by `make test`, installs it). Without it the browser tests are skipped, except in CI (CI=true),
where they fail. Set SCREENSHOT_DIR=docs/screenshots to refresh the README's screenshots.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def chromium():
    executable = shutil.which("chromium")
    if executable is None:
        message = "Debian's chromium is not installed (make test installs it; or apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread from here on; Django would otherwise
    # refuse the ORM calls the tests make beside it. The browser tests run last (tests/conftest.py),
    # so no other test runs beside that loop or with this switch.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def new_page(chromium, live_server):
    """Open pages in fresh browser contexts (one per user); fail the test on any CSP violation."""
    contexts, violations = [], []

    def _open(viewport=LAPTOP):
        context = chromium.new_context(viewport=viewport, base_url=live_server.url, device_scale_factor=1)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
        page.on("pageerror", lambda error: violations.append(f"JavaScript error: {error}"))
        return page

    yield _open
    for context in contexts:
        context.close()
    assert violations == []


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def screenshot(tmp_path):
    """Save a screenshot under SCREENSHOT_DIR when it is set (else in the test's tmp dir)."""
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def _shoot(target, name, **kwargs):
        """Screenshot a page or one element (a Playwright locator)."""
        getattr(target, "page", target).wait_for_timeout(250)  # let transitions settle
        target.screenshot(path=str(folder / f"{name}.png"), **kwargs)

    return _shoot


@pytest.fixture
def sign_in():
    """Sign in through the form, as a person would; land on the flows page."""

    def _sign_in(page, username, password):
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/flows/")
        return page

    return _sign_in


@pytest.fixture
def langflow_superuser():
    """The `langflow`/`langflow` superuser every fresh install starts with."""
    from users.services import ensure_superuser

    user, _created = ensure_superuser()
    return user
