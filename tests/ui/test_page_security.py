import re

import pytest
from django.urls import reverse

from core.middleware import CONTENT_SECURITY_POLICY
from flows.services import import_flows

from .exports import load_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_urls(user, make_key):
    api_key, _raw = make_key(user, name="k")
    flow = import_flows(user=user, payload=load_export("echo"))[0]
    return [
        reverse("flows:list"), reverse("flows:import"), reverse("flows:detail", args=[flow.pk]),
        reverse("flows:delete", args=[flow.pk]), reverse("apikeys:list"), reverse("apikeys:create"),
        reverse("apikeys:delete", args=[api_key.pk]), reverse("password_change"),
    ]


def test_every_page_sends_the_security_headers(signed_in, page_urls):
    for url in page_urls:
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Content-Type-Options"] == "nosniff"


def test_the_policy_allows_scripts_and_styles_from_this_site_only():
    directives = dict(directive.split(" ", 1) for directive in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


def test_api_answers_keep_no_referrer(client):
    response = client.get("/api/v1/users/whoami")
    assert response["Referrer-Policy"] == "no-referrer"
    assert "Content-Security-Policy" in response


def test_no_page_has_inline_scripts_handlers_or_styles(client, signed_in, page_urls):
    bodies = [signed_in.get(url).content.decode() for url in page_urls]
    bodies.append(client.get("/login/").content.decode())
    for body in bodies:
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", body)
        assert not re.search(r"\son[a-z]+\s*=", body)
        assert not re.search(r"\sstyle\s*=", body) and "<style" not in body


def test_every_form_that_posts_carries_a_csrf_token(signed_in, page_urls):
    for url in page_urls:
        body = signed_in.get(url).content.decode()
        for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", body, flags=re.S):
            assert 'name="csrfmiddlewaretoken"' in form, url


def test_a_missing_page_is_the_sites_404_page(signed_in):
    response = signed_in.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body and "/static/css/app.css" in body


def test_api_routes_keep_answering_json(signed_in):
    response = signed_in.get("/api/v1/no-such-route")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_a_refused_csrf_token_gets_the_sites_403_page(client, user):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    response = client.post(reverse("apikeys:create"), {"name": "x"})
    body = response.content.decode()
    assert response.status_code == 403
    assert "This form expired" in body and "Reload the form" in body


def test_the_500_page_renders_without_a_user_or_a_session(rf):
    from core.views import server_error

    response = server_error(rf.get("/flows/"))  # no session, no user: as when the database is down
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body and "/static/css/app.css" in body
