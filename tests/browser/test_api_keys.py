"""Browser tests 1 and 3: create a key shown once; the dialog by keyboard alone."""

import pytest
import requests
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open_api_keys(page):
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys").click()
    expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_visible()


def test_a_new_key_is_shown_once_copied_and_never_again(page, sign_in, langflow_superuser, live_server):
    sign_in(page, "langflow", "langflow")
    # A labelled region, not an alert: it would be re-announced on every page.
    expect(page.get_by_role("region", name="Default password")).to_contain_text("default password")
    _open_api_keys(page)
    expect(page.get_by_text("No API keys yet")).to_be_visible()

    page.get_by_role("link", name="Create new secret key").first.click()
    dialog = page.get_by_role("dialog", name="Create new secret key")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Name").fill("laptop")
    dialog.get_by_role("button", name="Create secret key").click()

    shown = page.get_by_role("dialog", name="Save your secret key")
    expect(shown).to_be_visible()
    expect(shown).to_contain_text("will not be shown again")
    raw_key = shown.get_by_label("Secret key").input_value()
    assert raw_key.startswith("lfsk_")
    shown.get_by_role("button", name="Copy").click()
    expect(shown.get_by_text("Copied", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw_key

    whoami = requests.get(f"{live_server.url}/api/v1/users/whoami", headers={"x-api-key": raw_key}, timeout=10)
    assert whoami.status_code == 200 and whoami.json()["username"] == "langflow"

    shown.get_by_role("link", name="Done").click()
    expect(page.locator("#created-key-dialog")).to_have_count(0)  # removed from the page, not only hidden
    assert raw_key not in page.content()
    page.reload()
    row = page.get_by_role("row").filter(has_text="laptop")
    expect(row).to_contain_text("Active")
    assert raw_key not in page.content()
    page.go_back()
    page.go_forward()
    assert raw_key not in page.content()


def test_the_dialog_works_by_keyboard_alone(page, sign_in, langflow_superuser):
    sign_in(page, "langflow", "langflow")
    page.goto("/api-keys/")
    opener = page.get_by_role("link", name="Create new secret key").first
    for _ in range(30):  # tab to the button, as a keyboard user would
        page.keyboard.press("Tab")
        if opener.evaluate("element => element === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Create new secret key button")
    page.keyboard.press("Enter")

    dialog = page.locator("#create-key-dialog")
    expect(dialog).to_be_visible()
    assert dialog.evaluate("element => element.matches(':modal')")
    expect(dialog.get_by_label("Name")).to_be_focused()
    inside = "() => document.getElementById('create-key-dialog').contains(document.activeElement)"
    for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"focus left the dialog after {key}"

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()

    page.keyboard.press("Enter")
    expect(dialog.get_by_label("Name")).to_be_focused()
    page.keyboard.type("typed by keyboard")
    page.keyboard.press("Enter")
    shown = page.locator("#created-key-dialog")
    expect(shown).to_be_visible()
    expect(shown.get_by_label("Secret key")).to_be_focused()
    raw_key = shown.get_by_label("Secret key").input_value()
    page.keyboard.press("Escape")  # a stray Escape must not lose the key: it stays, with a warning
    expect(shown).to_be_visible()
    expect(shown.get_by_role("alert")).to_contain_text("You have not copied the key yet")
    assert shown.get_by_label("Secret key").input_value() == raw_key
    done = shown.get_by_role("link", name="Done")
    for _ in range(5):
        page.keyboard.press("Tab")
        if done.evaluate("element => element === document.activeElement"):
            break
    page.keyboard.press("Enter")  # Done: the deliberate way out
    expect(shown).to_have_count(0)
    assert raw_key not in page.content()
    expect(page.get_by_role("row").filter(has_text="typed by keyboard")).to_be_visible()
