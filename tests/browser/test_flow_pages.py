"""Browser tests of the flow pages (issue 16): keyboard journeys for import and run, drag and drop,
the streamed Run box, the tweaks editor, an expired session or form in the Run box."""

import json

import pytest
from playwright.sync_api import expect

from tests.flows.conftest import FakeModelServer
from tests.ui.exports import EXPORTS, load_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def echo_page(page, sign_in, langflow_superuser):
    from flows.services import import_flows

    flow = import_flows(user=langflow_superuser, payload=load_export("echo"))[0]
    sign_in(page, "langflow", "langflow")
    page.goto(f"/flows/{flow.pk}/")
    return page


def _tab_to(page, name, limit=40):
    """Press Tab until the focused element's accessible text contains ``name``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        text = page.evaluate("(() => { const el = document.activeElement;"
                             " return (el.getAttribute('aria-label') || el.textContent || el.id || '').trim(); })()")
        if name in text:
            return
    raise AssertionError(f"{name!r} never got the focus")


def test_import_by_keyboard_only(page, sign_in, langflow_superuser):
    sign_in(page, "langflow", "langflow")
    _tab_to(page, "Import flow")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Import a flow")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Langflow export file")).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files([str(EXPORTS / "echo.json"), str(EXPORTS / "basic_prompting.json")])
    expect(dialog.get_by_text("Chosen: echo.json, basic_prompting.json")).to_be_visible()
    _tab_to(page, "Import")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Imported “Echo”, “Basic Prompting”.")).to_be_visible()
    expect(page.get_by_role("link", name="Basic Prompting", exact=True)).to_be_visible()


def test_a_refused_import_names_components_and_keeps_the_file_name(page, sign_in, langflow_superuser):
    sign_in(page, "langflow", "langflow")
    page.get_by_role("link", name="Import flow").first.click()
    dialog = page.get_by_role("dialog", name="Import a flow")
    dialog.get_by_label("Langflow export file").set_input_files(str(EXPORTS / "meeting_summary.json"))
    dialog.get_by_role("button", name="Import").click()
    dialog = page.get_by_role("dialog", name="Import a flow")
    expect(dialog).to_contain_text("Not supported here: AssemblyAI Transcriber.")
    expect(dialog).to_contain_text("You chose: meeting_summary.json.")
    expect(dialog.get_by_text("AssemblyAITranscriber (node AAITranscriber-ms)")).to_be_hidden()  # folded away
    dialog.get_by_role("link", name="See the components this server runs").click()
    expect(page.get_by_role("heading", name="Supported components", level=1)).to_be_visible()


def test_files_dropped_on_the_flow_list_open_the_import_with_them(page, sign_in, langflow_superuser):
    sign_in(page, "langflow", "langflow")
    content = json.dumps(load_export("echo"))
    page.evaluate("""(content) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([content], "dropped.json", {type: "application/json"}));
        document.querySelector("main").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", content)
    dialog = page.get_by_role("dialog", name="Import a flow")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("Chosen: dropped.json")).to_be_visible()
    dialog.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Echo", level=1)).to_be_visible()


def test_run_by_keyboard_enter_sends_shift_enter_is_a_new_line(echo_page):
    page = echo_page
    message = page.get_by_label("Message")
    message.focus()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(page.locator("#run-output")).to_be_hidden()  # Shift+Enter did not send
    page.keyboard.press("Enter")
    expect(page.locator("#run-output pre")).to_have_text("first line\nsecond line")
    expect(message).to_be_focused()  # focus stayed in the form
    expect(page.locator("#run-status")).to_have_text("The flow answered: first line\nsecond line")
    expect(page.locator("#run-output .run-session code")).to_have_text(page.url.rstrip("/").rsplit("/", 1)[1])


def test_the_tweaks_editor_refuses_bad_json_before_sending(echo_page):
    page = echo_page
    page.get_by_text("Tweaks and session").click()
    tweaks = page.get_by_label("Tweaks (JSON)")
    tweaks.fill("{oops")
    page.get_by_label("Message").fill("hi")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(tweaks).to_be_focused()
    expect(tweaks).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_tweaks_live")).to_contain_text("Tweaks must be JSON")
    expect(page.locator("#run-output")).to_be_hidden()
    tweaks.fill('{"ChatInput-b6UCc": {"input_value": "tweaked"}}')
    page.get_by_label("Session id").fill("my-session")
    page.get_by_label("Message").fill("")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-output pre")).to_have_text("tweaked")
    expect(page.locator("#run-output .run-session code")).to_have_text("my-session")


def test_the_run_box_streams_a_models_answer(page, sign_in, langflow_superuser, settings):
    from flows.services import import_flows

    with FakeModelServer() as server:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = server.base_url, "server-side-key"
        flow = import_flows(user=langflow_superuser, payload=load_export("basic_prompting"))[0]
        sign_in(page, "langflow", "langflow")
        page.goto(f"/flows/{flow.pk}/")
        expect(page.get_by_text("Set up a model before you run this flow.")).to_have_count(0)
        page.get_by_label("Message").fill("hi")
        page.keyboard.press("Enter")
        expect(page.locator("#run-output pre")).to_have_text("Hello from the model")
        assert server.last["json"]["stream"] is True


def test_a_model_flow_without_a_key_warns_before_the_run(page, sign_in, langflow_superuser, settings):
    from flows.services import import_flows

    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""
    flow = import_flows(user=langflow_superuser, payload=load_export("basic_prompting"))[0]
    sign_in(page, "langflow", "langflow")
    page.goto(f"/flows/{flow.pk}/")
    expect(page.get_by_text("Set up a model before you run this flow.")).to_be_visible()
    page.get_by_role("link", name="How to connect a model").click()
    expect(page.get_by_role("heading", name="Connecting a model")).to_be_visible()


def test_an_expired_session_in_the_run_box_signs_in_back_to_the_flow(echo_page):
    from django.contrib.sessions.models import Session

    page = echo_page
    flow_url = page.url
    Session.objects.all().delete()
    page.get_by_label("Message").fill("after expiry")
    page.keyboard.press("Enter")
    expect(page.locator("#run-output pre")).to_contain_text("Your session expired. Sign in again")
    expect(page.get_by_label("Message")).to_have_value("after expiry")
    page.get_by_role("link", name="Sign in again").click()
    expect(page.get_by_text("Your session expired. Sign in again to go back to the page you were on.")).to_be_visible()
    page.get_by_label("Username").fill("langflow")
    page.get_by_label("Password").fill("langflow")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(flow_url)
    expect(page.get_by_role("heading", name="Echo", level=1)).to_be_visible()


def test_an_expired_form_in_the_run_box_offers_a_reload(echo_page):
    page = echo_page
    page.evaluate("document.querySelector('form[data-run-form] [name=csrfmiddlewaretoken]').value = 'x'.repeat(64)")
    page.get_by_label("Message").fill("stale form")
    page.keyboard.press("Enter")
    expect(page.locator("#run-output pre")).to_contain_text("This page’s form expired")
    page.get_by_role("button", name="Reload the page").click()
    expect(page.locator("#run-output")).to_be_hidden()


def test_the_flow_is_renamed_and_its_export_downloaded(echo_page):
    page = echo_page
    page.get_by_role("link", name="Settings").click()
    settings = page.get_by_role("region", name="Settings")
    settings.get_by_label("Name", exact=True).fill("Greeter")
    settings.get_by_label("Endpoint name").fill("greeter")
    settings.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="Greeter", level=1)).to_be_visible()
    expect(page.get_by_text("The flow “Greeter” was saved.")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download export").first.click()
    assert download.value.suggested_filename == "greeter.json"
    assert json.loads(open(download.value.path()).read())["name"] == "Greeter"


def test_the_graph_is_a_picture_with_the_list_folded_away(echo_page):
    page = echo_page
    components = page.get_by_role("region", name="Components")
    expect(components.locator(".graph-label")).to_have_text(["Chat Input", "Chat Output"])
    expect(components.get_by_role("img", name="Graph of the flow: 2 components and 1 connection")).to_be_visible()
    expect(components.locator(".node-list")).to_be_hidden()
    components.get_by_text("The components as a list").click()
    expect(components.locator(".node-list")).to_contain_text("ChatInput-b6UCc")
