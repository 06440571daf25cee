"""In a real browser: names that look like scripts stay text, and every page runs under the CSP."""

import pytest
from playwright.sync_api import expect

from apikeys.services import create_api_key
from flows.services import import_flows
from tests.ui.exports import load_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<script>alert(1)</script>"


def test_a_key_and_a_flow_named_like_a_script_are_shown_as_text(page, sign_in, langflow_superuser):
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    create_api_key(user=langflow_superuser, name=XSS, expires_at=None)
    flow = import_flows(user=langflow_superuser, payload=load_export("echo") | {"name": XSS, "description": XSS})[0]
    sign_in(page, "langflow", "langflow")
    expect(page.get_by_role("link", name=XSS, exact=True)).to_be_visible()
    page.goto(f"/flows/{flow.pk}/")
    expect(page.get_by_role("heading", name=XSS, level=1, exact=True)).to_be_visible()
    page.get_by_role("link", name="Delete flow").click()
    expect(page.get_by_role("dialog", name="Delete flow?")).to_contain_text(f"{XSS} will be deleted")
    page.goto("/api-keys/")
    page.get_by_role("link", name=f"Revoke key {XSS}").click()
    expect(page.get_by_role("dialog", name="Revoke secret key?")).to_contain_text(XSS)
    assert alerts == []


def test_the_admin_and_the_api_docs_run_under_the_content_security_policy(page, sign_in, langflow_superuser):
    flow = import_flows(user=langflow_superuser, payload=load_export("echo"))[0]
    sign_in(page, "langflow", "langflow")
    for url in ["/admin/", "/admin/apikeys/apikey/", "/admin/apikeys/apikey/add/", f"/admin/flows/flow/{flow.pk}/change/",
                "/api/docs/"]:
        response = page.goto(url)
        assert response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
    # The `page` fixture fails the test on any CSP violation reported by the browser.
