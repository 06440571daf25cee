import logging
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections

from users.services import ensure_superuser

pytestmark = pytest.mark.django_db


def test_defaults_create_langflow_superuser_and_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="users.services"):
        user, created = ensure_superuser()
    assert created and user.username == "langflow"
    assert user.is_superuser and user.is_staff
    assert user.check_password("langflow")
    assert "default password" in caplog.text


def test_environment_values_are_used_and_no_warning_for_a_real_password(settings, caplog):
    settings.LANGFLOW_SUPERUSER = "root-admin"
    settings.LANGFLOW_SUPERUSER_PASSWORD = "a-much-better-password"
    with caplog.at_level(logging.WARNING, logger="users.services"):
        user, _ = ensure_superuser()
    assert user.username == "root-admin" and user.check_password("a-much-better-password")
    assert "default password" not in caplog.text


def test_bootstrap_is_idempotent():
    ensure_superuser()
    _, created = ensure_superuser()
    assert not created
    assert get_user_model().objects.filter(username="langflow").count() == 1


def test_changed_password_is_never_reset(caplog):
    user, _ = ensure_superuser()
    user.set_password("changed-later-123")
    user.save()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="users.services"):
        again, _ = ensure_superuser()
    assert again.check_password("changed-later-123")
    assert "default password" not in caplog.text


def test_warning_repeats_at_every_start_while_default_password_is_kept(caplog):
    ensure_superuser()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="users.services"):
        ensure_superuser()
    assert "default password" in caplog.text


def test_management_command_bootstraps(capsys):
    call_command("bootstrapsuperuser")
    assert get_user_model().objects.filter(username="langflow", is_superuser=True).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_create_one_superuser():
    errors = []
    barrier = threading.Barrier(6)

    def start():
        barrier.wait()
        try:
            ensure_superuser()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert get_user_model().objects.filter(username="langflow").count() == 1


def test_argon2_is_the_first_password_hasher():
    from django.conf import settings as real_settings

    from langflow_site import settings as module

    assert module.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert real_settings.AUTH_USER_MODEL == "users.User"
