"""An expired session or CSRF token is said as such (issue 16, item 4), with the way back to the same page."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode

from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

KEYS = reverse("apikeys:list")
CREATE = reverse("apikeys:create")


@pytest.fixture
def expired(client, user):
    """A browser whose session ended on the server (expired, or cleared) while it kept the cookie."""
    client.force_login(user)
    Session.objects.all().delete()
    return client


def test_the_sign_in_page_says_the_session_expired_and_goes_back_to_the_page(expired):
    response = expired.get(KEYS, follow=True)
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/login/?next={KEYS}"
    assert "Your session expired. Sign in again to go back to the page you were on." in body
    assert f'name="next" value="{KEYS}"' in body


def test_a_first_visit_is_not_called_an_expired_session(client):
    body = client.get(KEYS, follow=True).content.decode()
    assert "Sign in" in body and "session expired" not in body


def test_signing_out_is_not_called_an_expired_session(client, user):
    client.force_login(user)
    client.post(reverse("logout"))
    body = client.get(KEYS, follow=True).content.decode()
    assert "session expired" not in body


def test_a_csrf_failure_offers_to_reload_the_same_form(client, user):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    response = client.post(CREATE, {"name": "x"}, HTTP_REFERER=f"http://testserver{CREATE}?x=1")
    body = response.content.decode()
    assert response.status_code == 403
    assert "This form expired" in body and "Nothing changed." in body
    assert f'href="{CREATE}?x=1">Reload the form</a>' in body
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("referer", ["https://evil.example/steal", "//evil.example/x", "javascript:alert(1)", ""])
def test_the_way_back_never_leaves_the_site(client, user, referer):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    body = client.post(CREATE, {"name": "x"}, HTTP_REFERER=referer).content.decode()
    assert 'href="/">Reload the form</a>' in body and "evil" not in body and "javascript:" not in body


def test_a_csrf_failure_after_the_session_ended_says_so_and_signs_in_back_to_the_page(expired):
    expired.handler.enforce_csrf_checks = True
    response = expired.post(CREATE, {"name": "x"}, HTTP_REFERER=f"http://testserver{KEYS}")
    body = response.content.decode()
    assert response.status_code == 403
    assert "Your session expired" in body
    assert f'href="/login/?{urlencode({"next": KEYS})}">Sign in again</a>' in body


def test_api_routes_keep_their_json_403_for_a_csrf_failure(client, user):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    response = client.post("/api/v1/api_key/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403 and "detail" in response.json()


def test_the_marker_survives_django_deleting_the_stale_cookie(expired):
    """A browser drops the deleted session cookie before it follows the redirect: the marker is what
    the sign-in page sees then."""
    response = expired.get(KEYS)
    assert response.status_code == 302 and response.cookies["sessionid"]["max-age"] == 0
    marker = response.cookies["session_ended"]
    assert marker.value == "1" and marker["httponly"] and marker["samesite"] == "Lax"
    fresh = Client()
    fresh.cookies["session_ended"] = "1"  # what the browser holds now: no session cookie
    assert "Your session expired." in fresh.get(response["Location"]).content.decode()


def test_signing_in_forgets_the_marker(client, user, client_ip):
    client.cookies["session_ended"] = "1"
    response = client.post(reverse("login"), {"username": user.username, "password": "alice-password-1"}, REMOTE_ADDR=client_ip)
    assert response.status_code == 302 and response.cookies["session_ended"]["max-age"] == 0


def test_signing_out_leaves_no_marker(client, user):
    client.force_login(user)
    response = client.post(reverse("logout"))
    assert "session_ended" not in response.cookies
    assert "session_ended" not in client.get(KEYS).cookies


def test_the_run_box_401_leaves_the_marker_for_the_sign_in_page(expired, user):
    from flows.services import import_flows

    from .exports import load_export

    flow = import_flows(user=user, payload=load_export("echo"))[0]
    response = expired.post(reverse("flows:run", args=[flow.pk]), {"input_value": "hi"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 401 and response.cookies["session_ended"].value == "1"
