"""The Variables page: list with type and mask, create, edit a value, delete with confirmation."""

import pytest
from django.test import Client
from django.urls import reverse

from variables import services
from variables.models import Variable

from .conftest import SECRET

pytestmark = pytest.mark.django_db

LIST = reverse("variables:list")
CREATE = reverse("variables:create")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_header_links_to_the_variables_page(signed_in):
    body = signed_in.get(reverse("flows:list")).content.decode()
    assert f'href="{LIST}"' in body and "Variables" in body


def test_the_list_shows_type_and_mask_never_a_credentials_value(signed_in, user):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    services.create_variable(owner=user, name="REGION", value="eu-west-1", type="Generic")
    response = signed_in.get(LIST)
    body = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "OPENAI_API_KEY" in body and "Credential" in body and "********" in body
    assert "eu-west-1" in body
    assert SECRET not in body


def test_another_users_variables_are_not_listed(signed_in, other_user):
    services.create_variable(owner=other_user, name="BOBS_KEY", value="bobs-secret")
    assert "BOBS_KEY" not in signed_in.get(LIST).content.decode()


def test_the_create_page_without_javascript_shows_the_dialog_open(signed_in):
    body = signed_in.get(CREATE).content.decode()
    assert '<dialog id="create-variable-dialog"' in body and " open data-open-on-load" in body


def test_creating_a_credential_encrypts_it_and_never_shows_it(signed_in, user):
    response = signed_in.post(CREATE, {"name": "OPENAI_API_KEY", "type": "Credential", "value": SECRET,
                                       "default_fields": "api_key, openai_api_key"})
    assert response.status_code == 302 and response["Location"] == LIST
    variable = Variable.objects.get(owner=user)
    assert variable.default_fields == ["api_key", "openai_api_key"] and SECRET not in variable.value
    body = signed_in.get(LIST).content.decode()
    assert "was created" in body and SECRET not in body


def test_a_form_with_a_mistake_never_renders_the_value_back(signed_in, user):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value="first")
    response = signed_in.post(CREATE, {"name": "OPENAI_API_KEY", "type": "Credential", "value": SECRET})
    body = response.content.decode()
    assert response.status_code == 400 and "Variable name already exists" in body
    assert SECRET not in body


def test_editing_replaces_the_value(signed_in, user):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value="old-value")
    edit = reverse("variables:edit", args=[variable.pk])
    page = signed_in.get(edit).content.decode()
    assert "old-value" not in page and "OPENAI_API_KEY" in page
    assert signed_in.post(edit, {"value": SECRET, "default_fields": "api_key"}).status_code == 302
    assert services.reveal(Variable.objects.get(pk=variable.pk)) == SECRET


def test_editing_with_an_empty_value_keeps_it(signed_in, user):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    signed_in.post(reverse("variables:edit", args=[variable.pk]), {"value": "", "default_fields": "api_key"})
    stored = Variable.objects.get(pk=variable.pk)
    assert services.reveal(stored) == SECRET and stored.default_fields == ["api_key"]


def test_delete_asks_for_confirmation_then_deletes(signed_in, user):
    variable = services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    url = reverse("variables:delete", args=[variable.pk])
    confirm = signed_in.get(url).content.decode()
    assert "Delete variable?" in confirm and "OPENAI_API_KEY" in confirm and SECRET not in confirm
    assert Variable.objects.exists()
    assert signed_in.post(url).status_code == 302
    assert not Variable.objects.exists()


def test_the_list_page_has_a_delete_dialog(signed_in, user):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    body = signed_in.get(LIST).content.decode()
    assert 'id="delete-variable-dialog"' in body and 'data-opens-dialog="delete-variable-dialog"' in body


@pytest.mark.parametrize("name", ["variables:edit", "variables:delete"])
def test_another_users_variable_is_a_404(signed_in, other_user, name):
    variable = services.create_variable(owner=other_user, name="BOBS_KEY", value="bobs-secret")
    assert signed_in.get(reverse(name, args=[variable.pk])).status_code == 404
    assert signed_in.post(reverse(name, args=[variable.pk]), {"value": "mine"}).status_code == 404
    assert services.reveal(Variable.objects.get(pk=variable.pk)) == "bobs-secret"


def test_forms_carry_a_csrf_token_and_a_post_without_it_is_refused(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert "csrfmiddlewaretoken" in client.get(CREATE).content.decode()
    response = client.post(CREATE, {"name": "K", "type": "Credential", "value": SECRET})
    assert response.status_code == 403 and not Variable.objects.exists()
    variable = services.create_variable(owner=user, name="K", value=SECRET)
    assert client.post(reverse("variables:delete", args=[variable.pk])).status_code == 403
    assert Variable.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(LIST)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_admin_shows_names_and_masks_only(admin_client, user):
    services.create_variable(owner=user, name="OPENAI_API_KEY", value=SECRET)
    variable = Variable.objects.get()
    listing = admin_client.get(reverse("admin:variables_variable_changelist")).content.decode()
    detail = admin_client.get(reverse("admin:variables_variable_change", args=[variable.pk])).content.decode()
    for body in (listing, detail):
        assert "OPENAI_API_KEY" in body and SECRET not in body and variable.value not in body
