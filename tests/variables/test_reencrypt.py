"""manage.py reencryptvariables: everything under the newest key, the old one then removable."""

import pytest
from django.core.management import CommandError, call_command

from variables import services
from variables.models import Variable

from .conftest import SECRET

pytestmark = pytest.mark.django_db


def test_every_credential_moves_to_the_newest_key(user, other_user, keys, settings, capsys):
    services.create_variable(owner=user, name="A", value=SECRET)
    services.create_variable(owner=other_user, name="A", value="bobs")
    services.create_variable(owner=user, name="G", value="plain", type="Generic")
    settings.VARIABLE_ENCRYPTION_KEYS = {1: keys[1], 2: keys[2]}
    call_command("reencryptvariables")
    assert "Re-encrypted 2 variable(s) under key version 2." in capsys.readouterr().out
    assert set(Variable.objects.filter(type="Credential").values_list("key_version", flat=True)) == {2}
    settings.VARIABLE_ENCRYPTION_KEYS = {2: keys[2]}  # the old key can go now
    assert services.reveal(Variable.objects.get(owner=user, name="A")) == SECRET
    assert services.reveal(Variable.objects.get(owner=other_user, name="A")) == "bobs"
    assert Variable.objects.get(name="G").value == "plain"


def test_running_it_again_does_nothing(user, keys, settings, capsys):
    services.create_variable(owner=user, name="A", value=SECRET)
    call_command("reencryptvariables")
    assert "Re-encrypted 0 variable(s)" in capsys.readouterr().out


def test_a_value_whose_key_is_gone_is_left_and_reported_never_printed(user, keys, settings, capsys):
    lost = services.create_variable(owner=user, name="LOST", value=SECRET)
    settings.VARIABLE_ENCRYPTION_KEYS = {2: keys[2]}
    services.create_variable(owner=user, name="FINE", value="fine")
    with pytest.raises(CommandError, match="1 variable"):
        call_command("reencryptvariables")
    output = capsys.readouterr()
    assert "LOST" in output.err and SECRET not in output.err + output.out and lost.value not in output.err
    assert Variable.objects.get(pk=lost.pk).value == lost.value
