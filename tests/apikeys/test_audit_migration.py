"""Migration 0007: the old audit words become facts, and every old row still says what it said."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apikeys.audit import describe
from apikeys.models import ApiKeyEvent

BEFORE = [("apikeys", "0006_event_key_index_covered_by_key_time")]
AFTER = [("apikeys", "0007_event_data")]
LONG_NAME = "A flow whose name goes on and on " * 8

# (kind, the old detail, the facts it becomes; None: kept as its words)
OLD_ROWS = [
    ("created", "never expires", {"expires_at": None, "rate_limit": "", "access": {
        "all_flows": True, "flows": [], "permissions": ["run", "read", "write"], "allowed_ips": []}}),
    ("created", "expires 2027-01-01 00:00 UTC; flows: “Echo”, “Summary”; permissions: run; "
                "allowed IPs: 10.0.0.0/8, 2001:db8::/32",
     {"expires_at": "2027-01-01T00:00:00+00:00", "rate_limit": "", "access": {
         "all_flows": False, "flows": [{"name": "Echo"}, {"name": "Summary"}], "permissions": ["run"],
         "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]}}),
    ("created", "expires 2026-05-02 13:45 UTC; flows: no flows",
     {"expires_at": "2026-05-02T13:45:00+00:00", "rate_limit": "", "access": {
         "all_flows": False, "flows": [], "permissions": ["run", "read", "write"], "allowed_ips": []}}),
    ("rotated", "previous secret valid until 2026-12-01 08:30 UTC",
     {"previous_valid_until": "2026-12-01T08:30:00+00:00"}),
    ("rotated", "previous secret stopped at once", {"previous_valid_until": None}),
    ("revoked", "", {}),
    ("expired", "", {}),
    ("auth_failed", "wrong secret", {"reason": "wrong_secret"}),
    ("auth_failed", "key changed during the request", {"reason": "key_changed"}),
    ("auth_failed", "address not allowed", {"reason": "address_not_allowed"}),
    ("access_changed", "Flows: all flows → “Echo”", {"field": "flows", "before": {"all_flows": True, "flows": []},
                                                       "after": {"all_flows": False, "flows": [{"name": "Echo"}]}}),
    ("access_changed", "Permissions: run, read, write → run",
     {"field": "permissions", "before": ["run", "read", "write"], "after": ["run"]}),
    ("access_changed", "Allowed IPs: anywhere → 203.0.113.7/32",
     {"field": "allowed_ips", "before": [], "after": ["203.0.113.7/32"]}),
    ("access_changed", "Expiry: never → 2027-03-04 05:06 UTC",
     {"field": "expires_at", "before": None, "after": "2027-03-04T05:06:00+00:00"}),
    ("access_changed", "Rate limit: the server's default → 100/min",
     {"field": "rate_limit", "before": "", "after": "100/min"}),
    ("access_changed", "Flows: “Echo” was deleted and removed from this key (2 flows left)",
     {"field": "flows", "cause": "flow_deleted", "flow": {"name": "Echo"}, "flows_left": 2}),
    ("access_changed", "Flows: “Echo” was deleted and removed from this key (no flows left)",
     {"field": "flows", "cause": "flow_deleted", "flow": {"name": "Echo"}, "flows_left": 0}),
    # Cut at 200 characters by the old column: kept as the words it has, never read as complete facts.
    ("access_changed", f"Flows: all flows → “{LONG_NAME}”"[:200], None),
    # Words no version wrote, and a name that makes the words ambiguous: kept as they are.
    ("revoked", "by hand", None),
    ("access_changed", "Flows: “A → B” → all flows", None),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_old_rows_become_facts_that_read_exactly_as_before_and_going_back_restores_the_words():
    old_apps = _migrate(BEFORE)
    try:
        OldEvent = old_apps.get_model("apikeys", "ApiKeyEvent")
        OldEvent.objects.bulk_create([OldEvent(kind=kind, detail=detail) for kind, detail, _facts in OLD_ROWS])
        _migrate(AFTER)
        events = list(ApiKeyEvent.objects.order_by("id"))
        assert len(events) == len(OLD_ROWS)
        for event, (_kind, detail, facts) in zip(events, OLD_ROWS, strict=True):
            assert event.data == (facts if facts is not None else {"text": detail}), detail
            assert describe(event) == detail
        old_apps = _migrate(BEFORE)
        restored = old_apps.get_model("apikeys", "ApiKeyEvent").objects.order_by("id").values_list("detail", flat=True)
        assert list(restored) == [detail for _kind, detail, _facts in OLD_ROWS]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
