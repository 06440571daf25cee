"""Browser test 2: a key created in the UI runs an imported echo flow over the API until it is deleted."""

import pytest
import requests
from playwright.sync_api import expect

from tests.ui.exports import EXPORTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _run(live_server, flow_id, raw_key, text):
    return requests.post(
        f"{live_server.url}/api/v1/run/{flow_id}",
        json={"input_value": text, "input_type": "chat", "output_type": "chat"},
        headers={"x-api-key": raw_key},
        timeout=30,
    )


def test_a_ui_key_runs_the_echo_flow_until_it_is_deleted(page, sign_in, langflow_superuser, live_server):
    sign_in(page, "langflow", "langflow")
    page.get_by_role("link", name="Import flow").first.click()
    dialog = page.get_by_role("dialog", name="Import a flow")
    dialog.get_by_label("Langflow export file").set_input_files(str(EXPORTS / "echo.json"))
    dialog.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Echo", level=1)).to_be_visible()
    expect(page.get_by_text("Imported “Echo”.")).to_be_visible()
    flow_id = page.url.rstrip("/").rsplit("/", 1)[1]
    components = page.get_by_role("region", name="Components")
    expect(components.locator(".graph-label")).to_have_text(["Chat Input", "Chat Output"])

    page.get_by_label("Message").fill("hello from the run box")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-output pre")).to_have_text("hello from the run box")

    api = page.get_by_role("region", name="API")
    expect(api.get_by_role("tab", name="cURL")).to_have_attribute("aria-selected", "true")
    expect(api.locator("#snippet-curl-code")).to_contain_text(f"/api/v1/run/{flow_id}")
    expect(api.locator("#snippet-curl-code")).to_contain_text("x-api-key: $LANGFLOW_API_KEY")
    api.get_by_role("tab", name="Python").click()
    expect(api.locator("#snippet-python-code")).to_be_visible()
    expect(api.locator("#snippet-curl-code")).to_be_hidden()
    api.get_by_role("button", name="Copy the Python example").click()
    assert "import requests" in page.evaluate("navigator.clipboard.readText()")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys").click()
    page.get_by_role("link", name="Create new secret key").first.click()
    page.get_by_label("Name").fill("echo client")
    page.get_by_role("button", name="Create secret key").click()
    raw_key = page.get_by_role("dialog", name="Save your secret key").get_by_label("Secret key").input_value()
    page.get_by_role("link", name="Done").click()

    answer = _run(live_server, flow_id, raw_key, "hello over the API")
    assert answer.status_code == 200
    assert answer.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "hello over the API"

    page.reload()
    expect(page.get_by_role("row").filter(has_text="echo client")).to_contain_text("1")
    page.get_by_role("link", name="Revoke key echo client").click()
    confirm = page.get_by_role("dialog", name="Revoke secret key?")
    expect(confirm).to_contain_text("echo client (lfsk_")
    confirm.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("The key “echo client” was revoked.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="echo client")).to_contain_text("Revoked")

    refused = _run(live_server, flow_id, raw_key, "hello again")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Invalid or missing API key"}


def test_a_flow_is_deleted_after_confirmation(page, sign_in, langflow_superuser):
    from flows.services import import_flows
    from tests.ui.exports import load_export

    flow = import_flows(user=langflow_superuser, payload=load_export("echo"))[0]
    sign_in(page, "langflow", "langflow")
    page.get_by_role("link", name="Delete flow Echo").click()
    confirm = page.get_by_role("dialog", name="Delete flow?")
    expect(confirm).to_contain_text("Echo will be deleted")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    page.get_by_role("link", name="Delete flow Echo").click()
    confirm.get_by_role("button", name="Delete flow").click()
    expect(page.get_by_text("The flow “Echo” was deleted.")).to_be_visible()
    expect(page.get_by_text("No flows yet")).to_be_visible()
    assert page.goto(f"/flows/{flow.pk}/").status == 404
