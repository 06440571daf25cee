"""Browser test 4: two users, and the second never sees the first's keys or flows."""

import pytest
from playwright.sync_api import expect

from apikeys.services import create_api_key
from flows.services import import_flows
from tests.ui.exports import load_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_second_user_never_sees_the_first_users_keys_or_flows(new_page, sign_in, langflow_superuser, django_user_model):
    first = new_page()
    sign_in(first, "langflow", "langflow")
    first.goto("/api-keys/")
    first.get_by_role("link", name="Create new secret key").first.click()
    first.get_by_label("Name").fill("first users key")
    first.get_by_role("button", name="Create secret key").click()
    expect(first.get_by_role("dialog", name="Save your secret key")).to_be_visible()
    api_key, _raw = create_api_key(user=langflow_superuser, name="another of the first", expires_at=None)
    flow = import_flows(user=langflow_superuser, payload=load_export("echo"))[0]

    django_user_model.objects.create_user(username="grace", password="grace-password-1")
    second = new_page()
    sign_in(second, "grace", "grace-password-1")
    expect(second.get_by_text("No flows yet")).to_be_visible()
    expect(second.get_by_role("link", name="Admin")).to_have_count(0)
    second.get_by_role("navigation", name="Main").get_by_role("link", name="API Keys").click()
    expect(second.get_by_text("No API keys yet")).to_be_visible()
    body = second.content()
    assert "first users key" not in body and api_key.lookup_id not in body

    for url in (f"/flows/{flow.pk}/", f"/flows/{flow.pk}/delete/", f"/api-keys/{api_key.pk}/delete/"):
        response = second.goto(url)
        assert response.status == 404
        expect(second.get_by_role("heading", name="Page not found")).to_be_visible()
    assert "Echo" not in second.content()

    first.reload()
    expect(first.get_by_role("row").filter(has_text="first users key")).to_be_visible()
