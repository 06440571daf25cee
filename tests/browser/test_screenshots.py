"""The README's screenshots, taken from realistic data (SCREENSHOT_DIR=docs/screenshots to refresh them).

Each also checks the page holds together at that width: nothing wider than the screen.
"""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key, create_api_key, revoke_api_key
from flows.services import import_flows
from tests.browser.conftest import PHONE
from tests.ui.exports import load_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(django_user_model):
    user = django_user_model.objects.create_user(username="ada", password="ada-password-1")
    _key, raw = create_api_key(user=user, name="CI pipeline", expires_at=None)
    for _ in range(42):
        authenticate_api_key(raw)
    create_api_key(user=user, name="Staging server", expires_at=timezone.now() + datetime.timedelta(days=90))
    create_api_key(user=user, name="", expires_at=None)
    old, _raw = create_api_key(user=user, name="Old laptop", expires_at=None)
    revoke_api_key(old, revoked_by=ApiKey.RevokedBy.OWNER)
    import_flows(user=user, payload=[load_export("basic_prompting"), load_export("echo")])
    return user


def _fits_the_screen(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport_name", ["laptop", "phone"])
def test_screenshots_of_keys_and_flows(new_page, sign_in, ada, screenshot, viewport_name):
    page = new_page(PHONE) if viewport_name == "phone" else new_page()
    suffix = "" if viewport_name == "laptop" else "-phone"
    sign_in(page, "ada", "ada-password-1")
    _fits_the_screen(page)
    screenshot(page, f"flows-list{suffix}", full_page=True)

    page.goto("/api-keys/")
    expect(page.get_by_role("row").filter(has_text="CI pipeline")).to_contain_text("42")
    _fits_the_screen(page)
    screenshot(page, f"api-keys{suffix}", full_page=True)

    page.get_by_role("link", name="Create new secret key").first.click()
    page.get_by_label("Name").fill("Reporting job")
    page.get_by_role("button", name="Create secret key").click()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied", exact=True)).to_be_visible()
    screenshot(page, f"api-keys-created{suffix}")

    page.get_by_role("link", name="Done").click()
    page.goto("/flows/")
    page.get_by_role("link", name="Echo", exact=True).click()
    page.get_by_label("Message").fill("Hello, flow!")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-output pre")).to_have_text("Hello, flow!")
    _fits_the_screen(page)
    screenshot(page, f"flow-page{suffix}", full_page=True)
    screenshot(page.get_by_role("region", name="API"), f"flow-api-panel{suffix}")
