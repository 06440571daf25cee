import pytest
from django.core.management import call_command
from django.db import connection

from apikeys.models import ApiKeyDailyUsage
from apikeys.services import authenticate_api_key

DROP = {
    "sqlite": "DROP TRIGGER IF EXISTS apikeys_count_daily_use",
    "postgresql": "DROP TRIGGER IF EXISTS apikeys_count_daily_use ON apikeys_apikey",
}


@pytest.mark.django_db(transaction=True)
def test_migrate_reinstalls_a_daily_usage_trigger_that_a_table_rebuild_dropped(user, make_key):
    _, raw = make_key(user)
    with connection.cursor() as cursor:
        cursor.execute(DROP[connection.vendor])
    authenticate_api_key(raw)
    assert ApiKeyDailyUsage.objects.count() == 0  # the trap: uses counted, the chart silently empty

    call_command("migrate", verbosity=0)
    authenticate_api_key(raw)
    assert list(ApiKeyDailyUsage.objects.values_list("uses", flat=True)) == [1]
