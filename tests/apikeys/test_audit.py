"""The audit log keeps facts whole and shows them whole: long lists of IPv6 ranges, long flow names."""

import datetime
import html
import json

import pytest
from django.urls import reverse

from apikeys import audit
from apikeys.access import MAX_ALLOWED_IPS, KeyAccess
from apikeys.models import ApiKeyEvent
from apikeys.services import change_key_access, change_key_settings, create_api_key
from flows.models import Flow
from flows.services import delete_flow

pytestmark = pytest.mark.django_db

CHANGED = ApiKeyEvent.Kind.ACCESS_CHANGED
# Fifty IPv6 ranges (the most a key may have) in their longest spelling: over 2,000 characters together.
IPV6_RANGES = tuple(f"2001:db8:{n:04x}:{n:04x}:{n:04x}:{n:04x}:{n:04x}:0/112" for n in range(1, MAX_ALLOWED_IPS + 1))


@pytest.fixture
def long_flows(user):
    """Three flows whose names are as long as a name may be (255 characters), with HTML in them."""
    return [Flow.objects.create(owner=user, name=(f"<b>Flow {n} & co</b> " + "long name " * 30)[:255])
            for n in range(3)]


@pytest.fixture
def changed_key(user, long_flows):
    api_key, _raw = create_api_key(user=user, name="wide")
    change_key_access(api_key, KeyAccess(all_flows=False, flow_ids=tuple(str(flow.pk) for flow in long_flows),
                                         allowed_ips=IPV6_RANGES), actor_user=user, client_ip="2001:db8::99")
    return api_key


def _expected_words(long_flows) -> dict[str, str]:
    return {
        "flows": "Flows: all flows → " + ", ".join(f"“{flow.name}”" for flow in long_flows),
        "allowed_ips": "Allowed IPs: anywhere → " + ", ".join(IPV6_RANGES),
    }


def test_an_access_change_naming_many_ipv6_ranges_and_long_flow_names_is_stored_whole(changed_key, long_flows):
    events = {event.data["field"]: event for event in changed_key.events.filter(kind=CHANGED)}
    assert events["allowed_ips"].data == {"field": "allowed_ips", "before": [], "after": list(IPV6_RANGES)}
    assert events["flows"].data["after"] == {
        "all_flows": False, "flows": [{"id": str(flow.pk), "name": flow.name} for flow in long_flows]}
    words = {field: audit.describe(event) for field, event in events.items()}
    assert words == _expected_words(long_flows)
    assert all(len(text) > 700 for text in words.values())  # far past the old 200-character column


def test_the_keys_page_shows_such_a_change_whole(client, user, changed_key, long_flows):
    client.force_login(user)
    body = client.get(reverse("apikeys:detail", args=[changed_key.pk])).content.decode()
    for words in _expected_words(long_flows).values():
        assert html.escape(words) in body
    assert "<b>Flow" not in body  # a flow's name is text, never markup


def test_the_admin_shows_such_a_change_whole_on_the_key_and_in_the_event_list(admin_client, changed_key, long_flows):
    key_page = admin_client.get(reverse("admin:apikeys_apikey_change", args=[changed_key.pk])).content.decode()
    event_list = admin_client.get(reverse("admin:apikeys_apikeyevent_changelist")).content.decode()
    event = changed_key.events.get(kind=CHANGED, data__field="allowed_ips")
    event_page = admin_client.get(reverse("admin:apikeys_apikeyevent_change", args=[event.pk])).content.decode()
    for words in _expected_words(long_flows).values():
        assert html.escape(words) in key_page and html.escape(words) in event_list
    assert html.escape(_expected_words(long_flows)["allowed_ips"]) in event_page
    assert IPV6_RANGES[-1] in event_page  # and the stored facts beside the words


def test_every_kind_of_event_reads_as_words(user, long_flows):
    api_key, _raw = create_api_key(user=user, access=KeyAccess(all_flows=False, flow_ids=(str(long_flows[0].pk),),
                                                               permissions=("run",)), rate_limit="100/min")
    later = datetime.datetime(2030, 1, 2, 3, 4, tzinfo=datetime.UTC)
    change_key_settings(api_key, expires_at=later, rate_limit="")
    delete_flow(long_flows[0])
    words = [audit.describe(event) for event in api_key.events.order_by("id")]
    assert words == [
        f"never expires; flows: “{long_flows[0].name}”; permissions: run; rate limit: 100/min",
        "Expiry: never → 2030-01-02 03:04 UTC",
        "Rate limit: 100/min → the server's default",
        f"Flows: “{long_flows[0].name}” was deleted and removed from this key (no flows left)",
    ]


@pytest.mark.parametrize("data", [{"field": "colour", "before": 1, "after": 2}, {"field": "flows"}, ["a", "list"]])
def test_facts_the_words_do_not_know_are_shown_as_stored_never_an_error(user, data):
    api_key, _raw = create_api_key(user=user)
    event = ApiKeyEvent.objects.create(api_key=api_key, kind=CHANGED, data=data)
    assert audit.describe(event) == json.dumps(data)
