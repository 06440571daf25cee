"""The compiled flow lookup must return what the ORM query it replaces returns."""

import uuid

import pytest

from flows import queries, services
from flows.models import Flow

pytestmark = pytest.mark.django_db


def _values(flow, *, with_data=True):
    names = [f.attname for f in Flow._meta.concrete_fields if with_data or f.name != "data"]
    return {name: getattr(flow, name) for name in names}


@pytest.mark.parametrize("with_data", [True, False])
def test_lookup_by_id_equals_the_orm(echo_flow, user, with_data):
    [fast] = queries.owned_flows_matching(user.pk, str(echo_flow.pk), with_data=with_data)
    slow = Flow.objects.get(pk=echo_flow.pk)
    assert _values(fast, with_data=with_data) == _values(slow, with_data=with_data)
    assert ("data" in fast.get_deferred_fields()) is (not with_data)
    assert fast.data == slow.data  # a deferred graph still loads on demand


def test_lookup_by_endpoint_name_and_by_id_return_at_most_one_of_each(echo_flow, user):
    other = services.create_flow(owner=user, name="Named like an id", endpoint_name=str(echo_flow.pk).replace("-", "_"))
    assert queries.owned_flows_matching(user.pk, "echo", with_data=False) == [echo_flow]
    found = queries.owned_flows_matching(user.pk, str(other.endpoint_name), with_data=False)
    assert found == [other]


def test_another_owners_flow_is_never_matched(echo_flow, other_user):
    assert queries.owned_flows_matching(other_user.pk, str(echo_flow.pk), with_data=False) == []
    assert queries.owned_flows_matching(other_user.pk, "echo", with_data=False) == []


@pytest.mark.parametrize("reference", ["", "has space", "nul\x00byte", "../etc"])
def test_a_reference_that_can_name_nothing_costs_no_query(user, reference, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert queries.owned_flows_matching(user.pk, reference, with_data=False) == []


def test_lookup_is_one_query(echo_flow, user, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert queries.owned_flows_matching(user.pk, str(uuid.uuid4()), with_data=False) == []
