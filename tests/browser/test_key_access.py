"""Fine-grained keys in the browser: a run-only key for one flow made in the dialog, then used on the API."""

import pytest
import requests
from playwright.sync_api import expect

from apikeys.models import ApiKey
from flows.services import import_flows
from tests.browser.conftest import PHONE
from tests.ui.exports import load_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(django_user_model):
    user = django_user_model.objects.create_user(username="ada", password="ada-password-1")
    import_flows(user=user, payload=[load_export("basic_prompting"), load_export("echo")])
    return user


def test_a_run_only_key_for_one_flow_made_in_the_dialog_runs_that_flow_and_nothing_else(
        page, sign_in, ada, live_server):
    sign_in(page, "ada", "ada-password-1")
    page.goto("/api-keys/")
    page.get_by_role("link", name="Create new secret key").first.click()
    dialog = page.get_by_role("dialog", name="Create new secret key")
    dialog.get_by_label("Name").fill("echo runner")
    chosen_flows = dialog.get_by_role("group", name="Chosen flows")
    expect(chosen_flows).to_be_hidden()  # "All my flows" is the default
    dialog.get_by_label("Only the flows I choose").check()
    expect(chosen_flows).to_be_visible()
    chosen_flows.get_by_label("Echo").check()
    dialog.get_by_label("List and read flows").uncheck()
    dialog.get_by_label("Create, change and delete flows").uncheck()
    dialog.get_by_role("button", name="Create secret key").click()

    shown = page.get_by_role("dialog", name="Save your secret key")
    raw_key = shown.get_by_label("Secret key").input_value()
    shown.get_by_role("link", name="Done").click()
    row = page.get_by_role("row").filter(has_text="echo runner")
    expect(row).to_contain_text("1 flow")
    expect(row).to_contain_text("run")
    expect(row).not_to_contain_text("read")

    echo, prompting = (ApiKey.objects.get().user.flows.get(name=name) for name in ("Echo", "Basic Prompting"))
    headers = {"x-api-key": raw_key}
    api = f"{live_server.url}/api/v1"
    ran = requests.post(f"{api}/run/echo", json={"input_value": "hi"}, headers=headers, timeout=10)
    assert ran.status_code == 200
    read = requests.get(f"{api}/flows/{echo.pk}", headers=headers, timeout=10)
    assert read.status_code == 403 and read.json() == {"detail": "This API key lacks the 'read' permission"}
    other = requests.post(f"{api}/run/{prompting.pk}", json={}, headers=headers, timeout=10)
    assert other.status_code == 404 and other.json() == {"detail": "Flow not found"}


def test_the_key_page_changes_access_and_the_list_fits_a_phone(new_page, sign_in, ada):
    page = new_page(PHONE)
    sign_in(page, "ada", "ada-password-1")
    page.goto("/api-keys/")
    page.get_by_role("link", name="Create new secret key").first.click()
    dialog = page.get_by_role("dialog", name="Create new secret key")
    dialog.get_by_label("Name").fill("limited")
    dialog.get_by_role("button", name="Create secret key").click()
    page.get_by_role("dialog", name="Save your secret key").get_by_role("link", name="Done").click()
    page.get_by_role("link", name="limited", exact=True).click()

    page.get_by_text("Change access").click()
    page.get_by_label("Allowed IPs").fill("203.0.113.7\n10.0.0.300")
    page.get_by_role("button", name="Save access").click()
    # Said twice: in the error summary at the top of the form, and at the field itself.
    expect(page.get_by_text("“10.0.0.300” is not an IPv4 or IPv6 address")).to_have_count(2)
    expect(page.get_by_text("“10.0.0.300” is not an IPv4 or IPv6 address").last).to_be_visible()
    page.get_by_label("Allowed IPs").fill("203.0.113.7")
    page.get_by_role("button", name="Save access").click()
    expect(page.get_by_text("Access changed, from the next request on")).to_be_visible()
    expect(page.locator(".access-list")).to_contain_text("203.0.113.7/32")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.goto("/api-keys/")
    expect(page.get_by_role("row").filter(has_text="limited")).to_contain_text("IP-limited")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
