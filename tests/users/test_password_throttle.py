"""Every way to check a password shares one throttle: /login/, /admin/login/ and the password changes."""

import random

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import RequestFactory
from django.urls import reverse

from users import throttling
from users.backends import ThrottledModelBackend
from users.services import ensure_superuser

pytestmark = pytest.mark.django_db

LOGIN = "/login/"
ADMIN_LOGIN = "/admin/login/"
LOCKED = "Too many failed sign-in attempts."


@pytest.fixture
def ip():
    return f"2001:db8::{random.randrange(1 << 16):x}:{random.randrange(1 << 16):x}"


@pytest.fixture
def admin_user():
    user, _created = ensure_superuser()  # langflow / langflow
    return user


def sign_in(client, ip, password, *, path=LOGIN, username="langflow"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def change_password(client, ip, old, *, path=None):
    new = "a-much-better-pass-9"
    return client.post(path or reverse("password_change"),
                       {"old_password": old, "new_password1": new, "new_password2": new}, REMOTE_ADDR=ip)


def is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_admin_sign_in_locks_after_the_same_number_of_failures(client, admin_user, ip, settings):
    statuses = [sign_in(client, ip, "wrong", path=ADMIN_LOGIN).status_code for _ in range(25)]
    limit = settings.LOGIN_THROTTLE_FAILURES
    assert statuses[: limit - 1] == [200] * (limit - 1)  # Django's admin answers a wrong password with its form
    assert statuses[limit - 1 :] == [429] * (25 - limit + 1)
    right = sign_in(client, ip, "langflow", path=ADMIN_LOGIN)
    assert right.status_code == 429 and 0 < int(right["Retry-After"]) <= settings.LOGIN_THROTTLE_WINDOW
    assert LOCKED in right.content.decode()
    assert not is_signed_in(client)


def test_after_the_sign_in_page_locks_a_user_the_admin_refuses_too(client, admin_user, ip, settings):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        sign_in(client, ip, "wrong")
    response = sign_in(client, ip, "langflow", path=ADMIN_LOGIN)
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert not is_signed_in(client)


def test_failures_on_the_admin_lock_the_sign_in_page(client, admin_user, ip, settings):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        sign_in(client, ip, "wrong", path=ADMIN_LOGIN)
    assert sign_in(client, ip, "langflow").status_code == 429
    assert not is_signed_in(client)


def test_the_admin_still_signs_in_with_the_right_password(client, admin_user, ip):
    response = sign_in(client, ip, "langflow", path=ADMIN_LOGIN)
    assert response.status_code == 302 and is_signed_in(client)


def test_a_locked_client_never_gets_its_password_hashed(client, admin_user, ip, settings, monkeypatch):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        sign_in(client, ip, "wrong")
    checked = []
    real = get_user_model().check_password
    monkeypatch.setattr(get_user_model(), "check_password", lambda user, raw: checked.append(raw) or real(user, raw))
    assert sign_in(client, ip, "langflow", path=ADMIN_LOGIN).status_code == 429
    assert sign_in(client, ip, "langflow").status_code == 429
    assert checked == []


def test_wrong_current_passwords_lock_the_password_change(client, user, ip, settings):
    client.force_login(user)
    limit = settings.LOGIN_THROTTLE_FAILURES
    statuses = [change_password(client, ip, "wrong").status_code for _ in range(limit + 2)]
    assert statuses == [400] * (limit - 1) + [429] * 3
    right = change_password(client, ip, "alice-password-1")
    assert right.status_code == 429 and 0 < int(right["Retry-After"]) <= settings.LOGIN_THROTTLE_WINDOW
    assert LOCKED in right.content.decode()
    user.refresh_from_db()
    assert user.check_password("alice-password-1")  # unchanged


def test_a_lock_from_the_sign_in_page_holds_for_the_password_change(client, user, ip, settings):
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        sign_in(client, ip, "wrong", username="alice")
    client.force_login(user)  # a session stolen or left open elsewhere
    assert change_password(client, ip, "alice-password-1").status_code == 429
    user.refresh_from_db()
    assert user.check_password("alice-password-1")


def test_wrong_current_passwords_lock_the_sign_in_too(client, user, ip, settings):
    client.force_login(user)
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        change_password(client, ip, "wrong")
    client.post("/logout/")
    assert sign_in(client, ip, "alice-password-1", username="alice").status_code == 429


def test_a_right_current_password_changes_it_and_forgets_the_failures(client, user, ip, settings):
    client.force_login(user)
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        change_password(client, ip, "wrong")
    assert change_password(client, ip, "alice-password-1").status_code == 302
    assert throttling.seconds_locked(RequestFactory().get("/", REMOTE_ADDR=ip), "alice") == 0
    client.post("/logout/")
    for _ in range(settings.LOGIN_THROTTLE_FAILURES - 1):
        assert sign_in(client, ip, "wrong", username="alice").status_code == 400


def test_the_admins_own_password_change_is_throttled_too(client, admin_user, ip, settings):
    client.force_login(admin_user)
    path = reverse("admin:password_change")
    statuses = [change_password(client, ip, "wrong", path=path).status_code for _ in range(settings.LOGIN_THROTTLE_FAILURES)]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    assert change_password(client, ip, "langflow", path=path).status_code == 429
    admin_user.refresh_from_db()
    assert admin_user.check_password("langflow")
    assert sign_in(client, ip, "langflow", path=ADMIN_LOGIN).status_code == 429


def test_the_admins_password_change_still_works(client, admin_user, ip):
    client.force_login(admin_user)
    response = change_password(client, ip, "langflow", path=reverse("admin:password_change"))
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.check_password("a-much-better-pass-9")


def test_every_authenticate_call_with_a_request_is_throttled(admin_user, ip, settings):
    request = RequestFactory().post("/", REMOTE_ADDR=ip)
    for _ in range(settings.LOGIN_THROTTLE_FAILURES):
        assert authenticate(request, username="langflow", password="wrong") is None
    assert authenticate(request, username="langflow", password="langflow") is None
    assert authenticate(username="langflow", password="langflow") == admin_user  # no client: the shell


def test_no_other_backend_can_check_a_password_unthrottled(settings):
    # Django tries backends in order: an unthrottled one before ours would sign a locked client in.
    assert settings.AUTHENTICATION_BACKENDS == [f"{ThrottledModelBackend.__module__}.{ThrottledModelBackend.__name__}"]
