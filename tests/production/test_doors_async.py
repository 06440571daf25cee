"""The OpenAI Responses and MCP doors on the real server (gunicorn + uvicorn, one worker), with
their official clients: a slow model holds no worker, so quick calls are answered meanwhile, and
each door works under ASGI as under the test server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from openai import OpenAI

from tests.harness.modelstub import ModelStub
from tests.harness.server import AppServer, prepare_site, request, site_env

pytestmark = pytest.mark.own_site

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "langflow"
MODEL_NODE = "LanguageModelComponent-FLeYF"
SLOW_SECONDS = 4


def upload(server: AppServer, key: str, flow: dict) -> str:
    reply = request("POST", server.url("/api/v1/flows/"), headers={"x-api-key": key, "Content-Type": "application/json"},
                    body=json.dumps(flow).encode())
    assert reply.status == 201, reply.body[:500]
    return reply.json()["id"]


def slow_prompting_flow() -> dict:
    """Basic Prompting, its model the stub answering after SLOW_SECONDS (the stub reads knobs from the model name)."""
    flow = json.loads((FIXTURES / "basic_prompting.json").read_text())
    node = next(node for node in flow["data"]["nodes"] if node["id"] == MODEL_NODE)
    node["data"]["node"]["template"]["model_name"]["value"] = f"stub,delay={SLOW_SECONDS}"
    return {**flow, "name": "Slow", "endpoint_name": "slow"}


def echo() -> dict:
    return {**json.loads((FIXTURES / "echo.json").read_text()), "endpoint_name": "echo"}


async def mcp_call(base_url: str, key: str, tool: str, text: str) -> str:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with Client(streamable_http_client(f"{base_url}/api/v1/mcp/", http_client=http)) as client:
        result = await client.call_tool(tool, {"input_value": text})
    assert not result.is_error, result
    return result.content[0].text


@pytest.fixture
def site(tmp_path):
    with ModelStub() as stub:
        env = site_env(tmp_path / "data", OPENAI_BASE_URL=stub.base_url, OPENAI_API_KEY="stub-key")
        key = prepare_site(env)
        with AppServer(env, workers=1) as server:
            upload(server, key, slow_prompting_flow())
            upload(server, key, echo())
            yield server, key, stub


def test_slow_calls_on_both_doors_hold_no_worker(site):
    server, key, stub = site
    base = server.url("")
    openai = OpenAI(base_url=f"{base}/api/v1", api_key=key, max_retries=0, timeout=30)
    slow: dict[str, str] = {}

    def slow_response():
        slow["responses"] = openai.responses.create(model="slow", input="patience").output_text

    def slow_tool():
        slow["mcp"] = asyncio.run(mcp_call(base, key, "slow", "patience"))

    threads = [threading.Thread(target=slow_response), threading.Thread(target=slow_tool)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while stub.stats()["in_flight"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.stats()["in_flight"] == 2, stub.stats()

    # The one worker answers both doors at once while two model calls wait.
    quick_started = time.monotonic()
    assert openai.responses.create(model="echo", input="meanwhile").output_text == "meanwhile"
    assert asyncio.run(mcp_call(base, key, "echo", "meanwhile too")) == "meanwhile too"
    streamed = [event.type for event in openai.responses.create(model="echo", input="s", stream=True)]
    assert streamed[-1] == "response.completed"
    assert time.monotonic() - quick_started < SLOW_SECONDS - 1

    for thread in threads:
        thread.join(timeout=30)
    assert slow == {"responses": "stub: patience", "mcp": "stub: patience"}
    assert time.monotonic() - started >= SLOW_SECONDS
