"""A credential saved any way (API, page, a flow's literal key) is nowhere in the database file."""

import json
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from flows import services as flow_services
from variables.models import Variable

from .conftest import prompting_export

API_SECRET = "sk-api-Hq2wE8rT5yU1iO4pA7sD"
PAGE_SECRET = "sk-page-Jk3lZ6xC9vB2nM5qW8eR"
FLOW_SECRET = "sk-flow-Ty7uI1oP4aS8dF2gH5jK"


def _database_bytes() -> bytes:
    """The SQLite file and its write-ahead log, as they are on disk."""
    path = Path(connection.settings_dict["NAME"])
    connection.close()  # let SQLite write everything out
    return b"".join(candidate.read_bytes() for candidate in (path, Path(f"{path}-wal")) if candidate.exists())


@pytest.mark.django_db(transaction=True)
def test_no_plaintext_credential_reaches_the_database_file(user, client):
    if connection.vendor != "sqlite":
        pytest.skip("reads the SQLite file")
    api = APIClient()
    api.force_login(user)
    assert api.post("/api/v1/variables/", {"name": "API_KEY", "value": API_SECRET}, format="json").status_code == 201
    client.force_login(user)
    assert client.post("/variables/new/", {"name": "PAGE_KEY", "type": "Credential", "value": PAGE_SECRET}).status_code == 302
    export = prompting_export(api_key=FLOW_SECRET, load_from_db=False)
    [flow] = flow_services.import_flows(user=user, payload=export)
    # A Generic is stored in clear: finding it proves the bytes read hold the rows just written.
    assert api.post("/api/v1/variables/", {"name": "REGION", "value": "generic-visible-value-123",
                                           "type": "Generic"}, format="json").status_code == 201
    assert Variable.objects.count() == 4
    assert FLOW_SECRET not in json.dumps(flow.data)
    stored = _database_bytes()
    assert b"generic-visible-value-123" in stored
    for secret in (API_SECRET, PAGE_SECRET, FLOW_SECRET):
        assert secret.encode() not in stored
