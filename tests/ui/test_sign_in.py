import pytest
from django.urls import reverse

from users import throttling

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


def _sign_in(client, ip, username, password):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_sign_in_page_is_a_form_with_a_csrf_token(client):
    response = client.get(LOGIN)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'name="username"' in body and 'name="password"' in body


def test_signing_in_lands_on_the_flows_page(client, user, client_ip):
    response = _sign_in(client, client_ip, "alice", "alice-password-1")
    assert response.status_code == 302
    assert client.get(response["Location"], follow=True).redirect_chain[-1][0] == reverse("flows:list")


def test_pages_need_a_signed_in_user(client):
    for url in ["/", reverse("apikeys:list"), reverse("flows:list"), reverse("password_change")]:
        response = client.get(url, follow=True)
        assert response.redirect_chain[-1][0].startswith(f"{LOGIN}?next=")


def test_a_wrong_password_gets_a_clear_error_and_a_400(client, user, client_ip):
    response = _sign_in(client, client_ip, "alice", "wrong")
    assert response.status_code == 400
    assert "Wrong username or password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_repeated_failures_lock_the_username_even_for_the_right_password(client, user, client_ip, settings):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        assert _sign_in(client, client_ip, "alice", "wrong").status_code == 400
    last = _sign_in(client, client_ip, "alice", "wrong")
    assert last.status_code == 429
    response = _sign_in(client, client_ip, "alice", "alice-password-1")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts. Wait 15 minutes before trying again." in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= settings.LOGIN_THROTTLE_WINDOW
    assert "_auth_user_id" not in client.session


def test_the_lock_covers_only_that_address(client, user, client_ip, settings):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        _sign_in(client, client_ip, "alice", "wrong")
    assert _sign_in(client, client_ip + "1", "alice", "alice-password-1").status_code == 302


def test_many_usernames_from_one_address_lock_the_address(client, user, client_ip, settings):
    settings.LOGIN_THROTTLE_IP_FAILURES = 4
    for number in range(4):
        _sign_in(client, client_ip, f"nobody-{number}", "wrong")
    assert _sign_in(client, client_ip, "alice", "alice-password-1").status_code == 429


def test_the_lock_ends_after_the_window(client, user, client_ip, settings, monkeypatch):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        _sign_in(client, client_ip, "alice", "wrong")
    later = throttling.time.time() + settings.LOGIN_THROTTLE_WINDOW + 1
    monkeypatch.setattr(throttling.time, "time", lambda: later)
    assert _sign_in(client, client_ip, "alice", "alice-password-1").status_code == 302


def test_a_successful_sign_in_forgets_earlier_failures(client, user, client_ip, settings):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        _sign_in(client, client_ip, "alice", "wrong")
    assert _sign_in(client, client_ip, "alice", "alice-password-1").status_code == 302
    client.post("/logout/")
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        assert _sign_in(client, client_ip, "alice", "wrong").status_code == 400


def test_the_wait_message_rounds_up_to_whole_minutes():
    assert throttling.wait_message(61) == "Too many failed sign-in attempts. Wait 2 minutes before trying again."
    assert throttling.wait_message(5) == "Too many failed sign-in attempts. Wait 1 minute before trying again."


def test_sign_out_is_a_post_that_ends_the_session(signed_in):
    assert signed_in.get("/logout/").status_code == 405
    response = signed_in.post("/logout/")
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert "_auth_user_id" not in signed_in.session
    assert "You are signed out." in signed_in.get(LOGIN).content.decode()


def test_the_session_cookie_is_httponly_and_samesite(client, user, client_ip):
    response = _sign_in(client, client_ip, "alice", "alice-password-1")
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_the_superuser_is_warned_while_the_default_password_is_in_use(client, superuser):
    client.force_login(superuser)
    body = client.get(reverse("apikeys:list")).content.decode()
    assert "still using the default password" in body
    assert f'href="{reverse("password_change")}"' in body


def test_other_users_see_no_default_password_banner(signed_in):
    assert "default password" not in signed_in.get(reverse("apikeys:list")).content.decode()


def _change_password(client, user, old_password):
    client.force_login(user)
    new = "a-much-better-pass-9"
    return client.post(
        reverse("password_change"), {"old_password": old_password, "new_password1": new, "new_password2": new}
    )


def test_changing_the_password_removes_the_banner_and_keeps_the_session(client, superuser):
    response = _change_password(client, superuser, "langflow")
    assert response.status_code == 302
    body = client.get(reverse("apikeys:list")).content.decode()
    assert "still using the default password" not in body
    assert "Your password was changed." in body


def test_a_wrong_old_password_is_a_form_error(client, superuser):
    response = _change_password(client, superuser, "nope")
    assert response.status_code == 400
    assert "Your old password was entered incorrectly" in response.content.decode()
