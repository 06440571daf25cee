"""Credential values: AES-GCM under a versioned key, bound to their owner and name."""

import base64
import os
import stat

import pytest

from langflow_site import datadir
from variables import crypto, services
from variables.models import Variable, VariableType

from .conftest import SECRET

pytestmark = pytest.mark.django_db


def test_a_credential_is_stored_encrypted_with_its_key_version(user, keys):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    stored = Variable.objects.get(pk=variable.pk)
    assert stored.type == VariableType.CREDENTIAL and stored.key_version == 1
    assert SECRET not in stored.value
    assert services.reveal(stored) == SECRET


def test_the_same_value_encrypts_differently_each_time(user, keys):
    one = services.create_variable(owner=user, name="A", value=SECRET)
    two = services.create_variable(owner=user, name="B", value=SECRET)
    assert one.value != two.value


def test_a_generic_is_stored_as_it_is(user, keys):
    variable = services.create_variable(owner=user, name="REGION", value="eu-west-1", type="Generic")
    assert variable.value == "eu-west-1" and variable.key_version is None


def test_a_ciphertext_moved_to_another_users_row_fails(user, other_user, keys):
    mine = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    theirs = services.create_variable(owner=other_user, name="OPENAI_API_KEY", value="theirs")
    Variable.objects.filter(pk=theirs.pk).update(value=mine.value, key_version=mine.key_version)
    with pytest.raises(crypto.UndecryptableValue):
        services.reveal(Variable.objects.get(pk=theirs.pk))


def test_a_ciphertext_moved_to_another_name_fails(user, keys):
    mine = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    other = services.create_variable(owner=user, name="OTHER", value="x")
    Variable.objects.filter(pk=other.pk).update(value=mine.value)
    with pytest.raises(crypto.UndecryptableValue):
        services.reveal(Variable.objects.get(pk=other.pk))


def test_a_wrong_key_fails_closed_naming_the_variable_never_the_ciphertext(user, keys, settings):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    settings.VARIABLE_ENCRYPTION_KEYS = {1: keys[2]}
    with pytest.raises(crypto.UndecryptableValue) as caught:
        services.reveal(variable)
    message = str(caught.value)
    assert "OPENAI_API_KEY" in message and "VARIABLE_ENCRYPTION_KEYS" in message
    assert variable.value not in message and SECRET not in message


def test_a_rotated_away_key_version_fails_closed(user, keys, settings):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    settings.VARIABLE_ENCRYPTION_KEYS = {2: keys[2]}
    with pytest.raises(crypto.UndecryptableValue, match="version 1"):
        services.reveal(variable)


def test_the_newest_key_encrypts_and_older_ones_still_decrypt(user, keys, settings):
    old = services.create_variable(owner=user, name="OLD", value="old-secret")
    settings.VARIABLE_ENCRYPTION_KEYS = {1: keys[1], 2: keys[2]}
    new = services.create_variable(owner=user, name="NEW", value="new-secret")
    assert (old.key_version, new.key_version) == (1, 2)
    assert services.reveal(old) == "old-secret" and services.reveal(new) == "new-secret"


def test_renaming_a_credential_seals_it_again_under_its_new_name(user, keys):
    variable = services.create_variable(owner=user, name="OLD_NAME", value=SECRET)
    services.update_variable(variable, name="NEW_NAME")
    assert services.reveal(Variable.objects.get(pk=variable.pk)) == SECRET


def test_renaming_a_credential_whose_key_is_gone_fails_closed(user, keys, settings):
    variable = services.create_variable(owner=user, name="OLD_NAME", value=SECRET)
    settings.VARIABLE_ENCRYPTION_KEYS = {2: keys[2]}
    with pytest.raises(crypto.UndecryptableValue):
        services.update_variable(variable, name="NEW_NAME")
    assert Variable.objects.get(pk=variable.pk).name == "OLD_NAME"


def test_the_generated_key_file_is_private_and_well_formed(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    datadir.prepare()
    path = tmp_path / "data" / datadir.VARIABLE_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    version, _, key = path.read_text().partition(":")
    assert version == "1" and len(base64.urlsafe_b64decode(key)) == 32
    before = path.read_text()
    datadir.prepare()  # idempotent: never a new key over an old one
    assert path.read_text() == before
    assert os.path.getsize(path) > 40
