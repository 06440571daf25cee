"""WCAG 2.2 AA (issue 16): axe-core finds nothing, of any impact, on every page of ours.

Every page is loaded once per viewport (desktop 1280x860, phone 390x844) and checked in the light
and the dark color scheme (the site follows the system setting). axe-core comes from the
axe-playwright-python package, which ships it: no download. Transitions are switched off through
prefers-reduced-motion, so a scheme switch is measured at its final colors.
"""

import datetime
import re
import uuid

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from apikeys.access import KeyAccess
from apikeys.models import ApiKey, ApiKeyRequest
from apikeys.services import (
    authenticate_api_key,
    create_api_key,
    report_leaked_key,
    revoke_api_key,
    rotate_api_key,
)
from flows.services import delete_flow, import_flows
from tests.browser.conftest import PHONE
from tests.ui.exports import EXPORTS, load_export
from variables.services import create_variable
from webhooks.models import WebhookRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 860}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
SCHEMES = ("light", "dark")
AXE = Axe()

# axe's default rules (WCAG 2.0-2.2 A and AA, and best practices), plus these, off by default in
# axe 4.12: a control's name must contain its visible text (WCAG 2.5.3; the account menu), a
# focusable block needs a role (the scrolling graph and tables), targets of 24 px (WCAG 2.5.8).
EXTRA_RULES = ("label-content-name-mismatch", "focus-order-semantics", "target-size")

# Swagger UI (drf-spectacular-sidecar's bundle) draws /api/docs/ in the browser. What is ours there,
# the template (templates/drf_spectacular/swagger_ui.html: language, no inline style) and its
# stylesheet (static/css/swagger.css: colors at 4.5:1), passes. These rules fail on markup the
# bundle writes itself, which neither its configuration nor a stylesheet can change; they are
# left out on that page only.
SWAGGER_UNFIXABLE_RULES = {
    # Each operation's summary is a <button> holding other controls (copy the path, authorize).
    "nested-interactive": "Swagger UI's operation rows nest buttons",
    # Its title is an <h1>, its tag sections <h3>, with no <h2> between.
    "heading-order": "Swagger UI's heading levels",
    # It draws its own <main> around the operations only, so the title block above it is outside
    # every landmark, and a landmark of ours around it would nest that <main> (another violation).
    "region": "Swagger UI's title block outside its own <main>",
}


class Audit:
    """Run axe on the page as it is now, in each color scheme; collect what it finds."""

    def __init__(self, viewport_name):
        self.viewport_name = viewport_name
        self.found = []
        self.checked = 0

    def __call__(self, page, label, disabled_rules=()):
        page.wait_for_load_state("load")
        rules = {rule: {"enabled": True} for rule in EXTRA_RULES}
        rules.update({rule: {"enabled": False} for rule in disabled_rules})
        options = {"resultTypes": ["violations"], "rules": rules}
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
            page.wait_for_timeout(30)
            if not page.evaluate("() => Boolean(window.axe)"):  # once per page load, not per scheme
                page.evaluate(AXE.axe_script)
            results = page.evaluate("options => axe.run(document, options)", options)
            self.checked += 1
            for violation in results["violations"]:
                targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:6])
                self.found.append(f"{label} [{self.viewport_name}, {scheme}] {violation['id']} ({violation['impact']},"
                                  f" {len(violation['nodes'])} nodes): {targets}")
        page.emulate_media(color_scheme="light", reduced_motion="reduce")


@pytest.fixture
def site(langflow_superuser, django_user_model, settings):
    """The langflow superuser (default password: the banner shows) with flows, many keys, variables."""
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""  # the model warning
    user = langflow_superuser
    echo, prompting = import_flows(user=user, payload=[load_export("echo"), load_export("basic_prompting")])
    unsupported = import_flows(user=user, payload=load_export("meeting_summary"))[0]
    doomed = import_flows(user=user, payload=load_export("echo"))[0]
    now = timezone.now()
    statuses = [WebhookRun.Status.DONE, WebhookRun.Status.FAILED, WebhookRun.Status.RETRYING,
                WebhookRun.Status.RUNNING, WebhookRun.Status.RECEIVED]
    for index, status in enumerate(statuses):
        finished = status in (WebhookRun.Status.DONE, WebhookRun.Status.FAILED)
        WebhookRun.objects.create(
            flow=echo, status=status, body='{"hello": 1}', attempts=index, started_at=now if index < 4 else None,
            finished_at=now if finished else None,
            error="ValueError: the model answered 500" if status == WebhookRun.Status.FAILED else "")

    main, raw = create_api_key(user=user, name="CI pipeline", expires_at=now + datetime.timedelta(days=30))
    for _ in range(12):
        authenticate_api_key(raw)
    for index, code in enumerate([200, 200, 401, 404, 422, 500, 200]):
        ApiKeyRequest.objects.create(api_key=main, created_at=now - datetime.timedelta(hours=index * 20),
                                     method="POST", path=f"/api/v1/run/{echo.pk}", flow_ref=str(echo.pk),
                                     status=code, client_ip="203.0.113.7")
    for index in range(24):
        create_api_key(user=user, name=f"Service key number {index} with a long descriptive name",
                       expires_at=now + datetime.timedelta(days=index + 1))
    create_api_key(user=user, name="", expires_at=None)
    revoked, _ = create_api_key(user=user, name="Old laptop")
    revoke_api_key(revoked)
    expired, _ = create_api_key(user=user, name="Last year's demo")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=now - datetime.timedelta(days=3))
    _leaked, leaked_raw = create_api_key(user=user, name="Pasted in a gist")
    report_leaked_key(leaked_raw)
    orphan, _ = create_api_key(user=user, name="Only the doomed flow",
                               access=KeyAccess(all_flows=False, flow_ids=(str(doomed.pk),)))
    delete_flow(doomed)
    rotate_api_key(main, grace=datetime.timedelta(hours=24))  # the previous secret's notice

    variable = create_variable(owner=user, name="OPENAI_API_KEY", value="sk-test-123456789")
    create_variable(owner=user, name="REGION", value="eu-west-1", type="Generic")
    django_user_model.objects.create_user(username="newcomer", password="newcomer-password-1")
    return {"echo": echo, "prompting": prompting, "unsupported": unsupported, "key": main, "revoked": revoked,
            "orphan": orphan, "variable": variable, "user": user}


def _sign_in(page, username, password):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/flows/")


def _forbidden_page(route):
    """Answer with the site's own 403 page (core.views.permission_denied), as a refused page would."""
    from django.core.exceptions import PermissionDenied
    from django.test import RequestFactory

    from core.views import permission_denied

    response = permission_denied(RequestFactory().get("/"), PermissionDenied())
    route.fulfill(status=403, body=response.content, headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.mark.parametrize("viewport_name", list(VIEWPORTS))
def test_no_axe_violations_on_any_page(new_page, chromium, live_server, site, viewport_name):
    viewport = VIEWPORTS[viewport_name]
    audit = Audit(viewport_name)
    echo, key = site["echo"], site["key"]

    # Signed out: the sign-in page, with an error, after the session expired.
    page = new_page(viewport)
    page.emulate_media(reduced_motion="reduce")
    page.goto("/login/")
    audit(page, "sign-in")
    page.get_by_label("Username").fill("langflow")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".notice-error")).to_be_visible()
    audit(page, "sign-in with an error")

    # A user with nothing yet: the empty states.
    _sign_in(page, "newcomer", "newcomer-password-1")
    audit(page, "flow list, empty")
    page.goto("/api-keys/")
    audit(page, "API keys, empty")
    page.goto("/variables/")
    audit(page, "variables, empty")
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()
    page.goto("/api-keys/")
    expect(page.get_by_text("Your session expired.")).to_be_visible()
    audit(page, "sign-in, session expired")

    # The superuser with the default password (its banner on every page).
    _sign_in(page, "langflow", "langflow")
    audit(page, "flow list")
    page.get_by_role("link", name="Import flow").first.click()
    dialog = page.get_by_role("dialog", name="Import a flow")
    expect(dialog).to_be_visible()
    audit(page, "import dialog")
    dialog.get_by_label("Langflow export file").set_input_files(str(EXPORTS / "meeting_summary.json"))
    dialog.get_by_role("button", name="Import").click()
    expect(page.get_by_role("dialog", name="Import a flow")).to_contain_text("Not supported here")
    audit(page, "import refused")
    page.goto("/flows/components/")
    audit(page, "supported components")

    page.goto(f"/flows/{echo.pk}/")
    page.get_by_label("Message").fill("Hello, flow!")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-output pre")).to_have_text("Hello, flow!")
    expect(page.locator(".webhook-runs")).to_contain_text("Waiting to retry")
    audit(page, "flow page with an answer and webhook runs")
    page.get_by_role("tab", name="MCP").click()
    audit(page, "flow page, MCP tab")
    page.goto(f"/flows/{site['prompting'].pk}/")
    expect(page.get_by_text("Set up a model before you run this flow.")).to_be_visible()
    audit(page, "flow page with the model warning")
    page.goto(f"/flows/{site['unsupported'].pk}/")
    audit(page, "flow page of a flow that cannot run")
    page.goto(f"/flows/{echo.pk}/edit/")
    audit(page, "flow settings")
    page.goto(f"/flows/{echo.pk}/delete/")
    audit(page, "flow delete confirmation")

    page.goto("/api-keys/")
    expect(page.locator(".leaked-notice")).to_have_count(1)
    audit(page, "API keys, many")
    page.get_by_role("link", name="Revoke").first.click()
    expect(page.get_by_role("dialog", name="Revoke secret key?")).to_be_visible()
    audit(page, "revoke dialog")
    page.goto("/api-keys/?q=no-such-key")
    audit(page, "API keys, nothing found")
    page.goto("/api-keys/new/")
    create = page.locator("#create-key-dialog")
    expect(create).to_be_visible()
    audit(page, "create key dialog")
    create.get_by_label("Only the flows I choose").check()
    create.get_by_label("Allowed IPs").fill("not an address")
    create.get_by_role("button", name="Create secret key").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    audit(page, "create key dialog with errors")
    create = page.locator("#create-key-dialog")
    create.get_by_label("All my flows").check()
    create.get_by_label("Allowed IPs").fill("")
    create.get_by_label("Name").fill("Reporting job")
    create.get_by_role("button", name="Create secret key").click()
    created = page.get_by_role("dialog", name="Save your secret key")
    expect(created).to_be_visible()
    audit(page, "the shown-once key")
    created.get_by_role("button", name="Copy").click()
    created.get_by_role("link", name="Done").click()

    page.goto(f"/api-keys/{key.pk}/")
    expect(page.get_by_text("The previous secret still works")).to_be_visible()
    page.get_by_text("Show the numbers as a table").click()
    audit(page, "key detail with the usage chart and its table")
    page.get_by_role("button", name="Rotate secret…").click()
    expect(page.locator("#rotate-key-dialog")).to_be_visible()
    audit(page, "rotate dialog")
    page.goto(f"/api-keys/{key.pk}/requests/")
    audit(page, "request log")
    page.goto(f"/api-keys/{key.pk}/events/")
    audit(page, "audit log")
    page.goto(f"/api-keys/{site['orphan'].pk}/")
    expect(page.locator(".no-flows-notice")).to_be_visible()
    audit(page, "key detail, no flows")
    page.goto(f"/api-keys/{site['revoked'].pk}/")
    audit(page, "key detail, revoked")
    page.goto(f"/api-keys/{key.pk}/revoke/")
    audit(page, "revoke confirmation page")

    page.goto("/variables/")
    audit(page, "variables")
    page.goto("/variables/new/")
    expect(page.locator("#create-variable-dialog")).to_be_visible()
    audit(page, "create variable dialog")
    page.locator("#create-variable-dialog").get_by_role("button", name="Save variable").click()
    expect(page.locator(".error-summary")).to_be_focused()
    audit(page, "create variable with errors")
    page.goto(f"/variables/{site['variable'].pk}/edit/")
    audit(page, "variable edit")
    page.goto(f"/variables/{site['variable'].pk}/delete/")
    audit(page, "variable delete confirmation")
    page.goto("/password/change/")
    audit(page, "password change")

    page.goto(f"/flows/{uuid.uuid4()}/")
    audit(page, "404 page")
    page.route("**/forbidden-page/", _forbidden_page)
    page.goto("/forbidden-page/")
    audit(page, "403 page")
    page.goto("/variables/new/")
    page.evaluate("document.querySelector('#create-variable-dialog [name=csrfmiddlewaretoken]').value = 'x'.repeat(64)")
    page.locator("#create-variable-dialog").get_by_role("button", name="Save variable").click()
    expect(page.get_by_role("heading", name="This form expired")).to_be_visible()
    audit(page, "CSRF failure page")

    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    audit(page, "API docs (Swagger UI)", disabled_rules=tuple(SWAGGER_UNFIXABLE_RULES))

    # Without the site's script: dialogs are sections of their pages, confirmations are pages. (Not
    # with JavaScript switched off in the browser: axe is a script too.)
    plain = chromium.new_context(viewport=viewport, base_url=live_server.url,
                                 storage_state=page.context.storage_state())
    plain.route("**/static/js/app.js", lambda route: route.fulfill(body="", content_type="text/javascript"))
    plain_page = plain.new_page()
    try:
        plain_page.goto("/api-keys/new/")
        audit(plain_page, "create key section (no script)")
        plain_page.goto("/flows/import/")
        audit(plain_page, "import section (no script)")
        plain_page.goto(f"/api-keys/{key.pk}/")
        plain_page.get_by_role("button", name="Rotate secret…").click()
        expect(plain_page.get_by_role("heading", name="Rotate the secret of", level=1)).to_be_visible()
        audit(plain_page, "rotate confirmation page (no script)")
        plain_page.goto("/api-keys/")
        plain_page.get_by_role("checkbox", name="Select CI pipeline").check()
        plain_page.get_by_role("button", name="Revoke selected").click()
        expect(plain_page.get_by_role("heading", level=1)).to_contain_text("Revoke")
        audit(plain_page, "bulk revoke confirmation page (no script)")
    finally:
        plain.close()

    # The admin pages of our models, as the superuser sees them. In a context of their own: Django's
    # admin scripts (jQuery's feature tests) try inline styles that the site's CSP refuses, which
    # the new_page fixture would count against our pages.
    admin = chromium.new_context(viewport=viewport, base_url=live_server.url,
                                 storage_state=page.context.storage_state())
    admin_page = admin.new_page()
    admin_pages = {"admin index": "/admin/"}
    for model, obj in [("apikeys/apikey", key), ("flows/flow", echo), ("users/user", site["user"]),
                       ("variables/variable", site["variable"])]:
        admin_pages[f"admin {model} list"] = f"/admin/{model}/"
        admin_pages[f"admin {model} change"] = f"/admin/{model}/{obj.pk}/change/"
    admin_pages["admin apikeys/apikey add"] = "/admin/apikeys/apikey/add/"
    try:
        for label, url in admin_pages.items():
            admin_page.goto(url)
            audit(admin_page, label)
    finally:
        admin.close()

    report = "\n".join(audit.found)
    assert not audit.found, f"axe found {len(audit.found)} violations in {audit.checked} checks:\n{report}"


def _contrast(first, second):
    """WCAG's contrast ratio of two "rgb(r, g, b)" colors."""
    def luminance(color):
        channels = [int(part) / 255 for part in color[color.index("(") + 1:color.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    high, low = sorted([luminance(first), luminance(second)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_errors_are_summarised_first_and_lead_to_their_fields_by_keyboard(page, sign_in, langflow_superuser):
    from flows.services import import_flows

    import_flows(user=langflow_superuser, payload=load_export("echo"))
    sign_in(page, "langflow", "langflow")
    # The default-password banner is a plain region: nothing is announced as an alert on load.
    expect(page.get_by_role("region", name="Default password")).to_be_visible()
    expect(page.locator("[role=alert]:visible")).to_have_count(0)
    # The account menu is named by what it shows, first (WCAG 2.5.3).
    expect(page.locator(".user-menu summary")).to_have_accessible_name("langflow account menu")

    page.goto("/api-keys/new/")
    dialog = page.get_by_role("dialog", name="Create new secret key")
    expect(dialog).to_have_accessible_description(
        "The key acts as you on the API, within these limits. You will see it only once, right after it is created.")
    dialog.get_by_label("Only the flows I choose").check()
    dialog.get_by_label("Allowed IPs").fill("not-an-address")
    dialog.get_by_role("button", name="Create secret key").click()
    summary = page.locator("#create-key-dialog .error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("There are 2 problems")
    chosen = page.get_by_role("group", name="Chosen flows")
    expect(chosen).to_have_accessible_description(re.compile("^Choose at least one flow, or all flows."))
    expect(chosen.get_by_role("checkbox").first).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Allowed IPs")).to_have_accessible_description(re.compile("is not an IPv4 or IPv6"))
    page.keyboard.press("Tab")
    expect(summary.get_by_role("link", name="Chosen flows")).to_be_focused()
    page.keyboard.press("Enter")
    expect(chosen.get_by_role("checkbox").first).to_be_focused()
    summary.get_by_role("link", name="Allowed IPs").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Allowed IPs")).to_be_focused()

    # The focus ring of a button: a solid line at 3:1 or more against the dialog, in both themes.
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        cancel = dialog.get_by_role("link", name="Cancel")
        cancel.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focused by the keyboard: :focus-visible
        expect(cancel).to_be_focused()
        ring = cancel.evaluate("el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }")
        behind = dialog.evaluate("el => getComputedStyle(el).backgroundColor")
        assert ring[0] == "solid" and ring[1] == "2px"
        assert _contrast(ring[2], behind) >= 3, (scheme, ring, behind)


def test_the_dark_theme_follows_the_system_setting(new_page, sign_in, langflow_superuser):
    page = new_page()
    sign_in(page, "langflow", "langflow")
    colors = {}
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        colors[scheme] = page.evaluate("[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]")
    assert colors["light"] == ["rgb(246, 246, 248)", "rgb(23, 23, 28)"]
    assert colors["dark"] == ["rgb(15, 15, 20)", "rgb(236, 236, 241)"]
    assert _contrast(*colors["dark"]) >= 7


def test_a_code_sample_scrolls_by_keyboard_on_a_phone(new_page, sign_in, langflow_superuser):
    from flows.services import import_flows

    flow = import_flows(user=langflow_superuser, payload=load_export("echo"))[0]
    page = new_page(PHONE)
    sign_in(page, "langflow", "langflow")
    page.goto(f"/flows/{flow.pk}/")
    block = page.get_by_role("region", name="curl example")
    assert block.evaluate("el => el.scrollWidth > el.clientWidth")  # it does scroll on a phone
    for _ in range(80):
        page.keyboard.press("Tab")
        if block.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the curl example")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("el => el.scrollLeft > 0", arg=block.element_handle())
