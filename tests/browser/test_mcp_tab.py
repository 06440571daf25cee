"""Browser: the flow page's MCP tab gives a configuration that the official MCP client can use as it is."""

import asyncio
import json
import threading

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import expect

from apikeys.services import create_api_key
from flows.services import import_flows
from tests.ui.exports import load_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def list_tool_names(url: str, headers: dict) -> list[str]:
    """The tool names, listed by the mcp client (on a thread: Playwright holds this thread's event loop)."""
    found: list[str] = []

    async def work():
        async with Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers))) as client:
            found.extend(tool.name for tool in (await client.list_tools()).tools)

    thread = threading.Thread(target=lambda: asyncio.run(work()))
    thread.start()
    thread.join(timeout=30)
    return found


def test_the_mcp_tab_configures_a_client_that_lists_this_flow(page, sign_in, langflow_superuser, screenshot):
    [flow] = import_flows(user=langflow_superuser, payload={**load_export("echo"), "endpoint_name": "support-bot"})
    _, raw = create_api_key(user=langflow_superuser, name="editor")
    sign_in(page, "langflow", "langflow")
    page.goto(f"/flows/{flow.pk}/")
    api = page.get_by_role("region", name="API")
    api.get_by_role("tab", name="MCP").click()
    expect(api.locator("#snippet-mcp")).to_contain_text("the tool support-bot")
    expect(api.locator("#snippet-curl-code")).to_be_hidden()
    screenshot(api, "flow-api-panel-mcp")
    api.get_by_role("button", name="Copy the MCP example").click()
    config = json.loads(page.evaluate("navigator.clipboard.readText()"))["mcpServers"]["langflow"]
    headers = {name: value.replace("${LANGFLOW_API_KEY}", raw) for name, value in config["headers"].items()}
    assert list_tool_names(config["url"], headers) == ["support-bot"]
