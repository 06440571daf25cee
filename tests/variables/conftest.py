"""Fixtures for the variables tests: a secret that must never show, flows that load variables."""

import os

import pytest

from flows import services as flow_services
from tests.flows.conftest import (  # noqa: F401  (the flows tests' fixtures, used here too)
    key,
    load_fixture,
    model_server,
    model_settings,
    other_key,
    second_model_server,
)

# Distinctive, so that finding it anywhere (a page, a log, the database file) is unambiguous.
SECRET = "sk-live-Zq8vT3xW9yR2pL5mN7bK4cH6"
MODEL_NODE = "LanguageModelComponent-FLeYF"


def new_key() -> bytes:
    return os.urandom(32)


def prompting_export(*, api_key: str = "OPENAI_API_KEY", load_from_db: bool = True, name: str = "Basic Prompting"):
    """basic_prompting.json whose model node's api_key loads a variable (or holds a literal)."""
    export = load_fixture("basic_prompting.json")
    export["name"] = name
    for node in export["data"]["nodes"]:
        if node["id"] == MODEL_NODE:
            field = node["data"]["node"]["template"]["api_key"]
            field.update({"value": api_key, "load_from_db": load_from_db, "password": True})
    return export


def model_template(flow) -> dict:
    return next(node for node in flow.data["nodes"] if node["id"] == MODEL_NODE)["data"]["node"]["template"]


@pytest.fixture
def variable_flow(user):
    """The user's Basic Prompting flow, its model key loaded from the variable OPENAI_API_KEY."""
    [flow] = flow_services.import_flows(user=user, payload=prompting_export())
    return flow


@pytest.fixture
def keys(settings):
    """Two fresh encryption keys; version 1 configured."""
    first, second = new_key(), new_key()
    settings.VARIABLE_ENCRYPTION_KEYS = {1: first}
    return {1: first, 2: second}
