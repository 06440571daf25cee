import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from apikeys import show_once
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key, revoke_api_key

pytestmark = pytest.mark.django_db

LIST = reverse("apikeys:list")
CREATE = reverse("apikeys:create")
XSS = "<script>alert(1)</script>"


def _create(client, name="ci"):
    return client.post(CREATE, {"name": name})


def test_the_page_explains_keys_and_invites_the_first_one(signed_in):
    body = signed_in.get(LIST).content.decode()
    assert "It acts as you" in body
    assert "No API keys yet" in body
    assert f'href="{CREATE}"' in body and "Create new secret key" in body


def test_a_row_shows_name_masked_key_dates_uses_expiry_and_state(signed_in, user, make_key):
    named, raw = make_key(user, name="deploy bot")
    make_key(user)
    authenticate_api_key(raw)
    body = signed_in.get(LIST).content.decode()
    row = body.split(f'data-key-id="{named.pk}"')[1].split("</tr>")[0]
    assert "deploy bot" in row and named.masked in row
    assert re.search(r'data-label="Last used"><span class="stacked"><time datetime=', row)
    assert "1 use<" in row
    assert "Active" in row
    assert raw not in body and named.digest not in body
    assert "Untitled" in body and body.count(">Never<") >= 2  # the unused key, and no expiry


def test_creating_a_key_redirects_and_shows_it_exactly_once(signed_in, user):
    response = _create(signed_in, "ci")
    assert response.status_code == 302 and response["Location"] == LIST
    api_key = ApiKey.objects.get(user=user)
    shown = signed_in.get(LIST)
    body = shown.content.decode()
    raw = re.search(r'value="(lfsk_[^"]+)"', body).group(1)
    assert authenticate_api_key(raw).pk == api_key.pk
    assert "will not be shown again" in body and "store it somewhere secure" in body
    assert "no-store" in shown["Cache-Control"]
    assert show_once.SESSION_KEY not in signed_in.session
    again = signed_in.get(LIST).content.decode()
    assert raw not in again and "Save your secret key" not in again


def test_the_new_key_is_never_in_a_url_a_cookie_or_a_message(signed_in):
    response = _create(signed_in, "ci")
    shown = signed_in.get(LIST)
    raw = re.search(r'value="(lfsk_[^"]+)"', shown.content.decode()).group(1)
    assert raw not in response["Location"]
    for cookie in list(response.cookies.values()) + list(shown.cookies.values()) + list(signed_in.cookies.values()):
        assert raw not in cookie.value
    assert all(raw not in str(message) for message in shown.context["messages"])


def test_a_name_over_100_characters_is_a_form_error_in_the_open_dialog(signed_in, user):
    response = _create(signed_in, "x" * 101)
    body = response.content.decode()
    assert response.status_code == 400
    assert "Keep the name to 100 characters or fewer (it has 101)." in body
    assert re.search(r'<dialog id="create-key-dialog"[^>]*\sopen[\s>]', body)
    assert 'value="' + "x" * 101 + '"' in body
    assert not ApiKey.objects.filter(user=user).exists()


def test_the_create_page_without_javascript_shows_the_dialog_open(signed_in):
    body = signed_in.get(CREATE).content.decode()
    assert re.search(r'<dialog id="create-key-dialog"[^>]*\sopen[\s>]', body)
    assert "Create secret key" in body


def test_the_list_renders_the_create_dialog_closed(signed_in):
    body = signed_in.get(LIST).content.decode()
    assert not re.search(r'<dialog id="create-key-dialog"[^>]*\sopen[\s>]', body)


def test_delete_asks_for_confirmation_naming_the_key(signed_in, user, make_key):
    api_key, _raw = make_key(user, name="old laptop")
    response = signed_in.get(reverse("apikeys:delete", args=[api_key.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "old laptop" in body and api_key.masked in body and "Revoke key" in body
    api_key.refresh_from_db()
    assert api_key.is_usable


def test_confirming_delete_refuses_the_next_api_call(signed_in, user, make_key):
    api_key, raw = make_key(user, name="old laptop")
    api = APIClient()
    assert api.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw).status_code == 200
    response = signed_in.post(reverse("apikeys:delete", args=[api_key.pk]), follow=True)
    body = response.content.decode()
    assert "The key “old laptop” was revoked" in body
    assert "Revoked" in body
    refused = api.get("/api/v1/users/whoami", HTTP_X_API_KEY=raw)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Invalid or missing API key"}


def test_deleting_an_already_revoked_key_changes_nothing(signed_in, user, make_key):
    api_key, _raw = make_key(user)
    revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.ADMIN)
    response = signed_in.post(reverse("apikeys:delete", args=[api_key.pk]), follow=True)
    assert "was already revoked" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_by == ApiKey.RevokedBy.ADMIN


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_key_answers_404(signed_in, other_user, make_key, method):
    theirs, raw = make_key(other_user, name="theirs")
    response = getattr(signed_in, method)(reverse("apikeys:delete", args=[theirs.pk]))
    assert response.status_code == 404
    assert authenticate_api_key(raw).pk == theirs.pk


def test_a_user_never_sees_another_users_keys(signed_in, other_user, make_key):
    theirs, _raw = make_key(other_user, name="bobs secret key")
    body = signed_in.get(LIST).content.decode()
    assert "bobs secret key" not in body and theirs.lookup_id not in body


def test_a_stashed_key_of_someone_else_is_never_shown(signed_in, user, other_user, make_key):
    theirs, raw = make_key(other_user)
    request = RequestFactory().get(LIST)
    request.user, request.session = user, signed_in.session
    response = HttpResponse()
    show_once.stash(request, response, api_key=theirs, raw_key=raw, page=LIST)
    request.session.save()
    name = show_once.cookie_name(str(theirs.pk))
    signed_in.cookies[name] = response.cookies[name].value
    assert raw not in signed_in.get(LIST).content.decode()


def test_a_key_named_like_a_script_is_escaped(signed_in, user):
    _create(signed_in, XSS)
    for body in (signed_in.get(LIST).content.decode(), signed_in.get(LIST).content.decode()):
        assert XSS not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_forms_refuse_a_post_without_csrf_token(client, user):
    client.handler.enforce_csrf_checks = True
    client.force_login(user)
    response = client.post(CREATE, {"name": "x"})
    assert response.status_code == 403
    assert not ApiKey.objects.exists()


def test_key_pages_are_never_cached(signed_in, user, make_key):
    api_key, _raw = make_key(user)
    for url in (LIST, CREATE, reverse("apikeys:delete", args=[api_key.pk])):
        assert "no-store" in signed_in.get(url)["Cache-Control"]
