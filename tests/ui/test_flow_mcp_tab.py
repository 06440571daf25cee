"""The flow page's API panel: an MCP tab with the client configuration and the flow's tool name."""

import html
import json
import re

import pytest
from django.urls import reverse

from flows.services import import_flows

from .exports import load_export

pytestmark = pytest.mark.django_db


def mcp_panel(body: str) -> str:
    return re.search(r'<div class="snippet" id="snippet-mcp">(.*?)</div>', body, re.S).group(1)


def test_the_mcp_tab_gives_a_client_configuration_without_a_real_key(signed_in, user, make_key):
    _api_key, raw = make_key(user)
    [flow] = import_flows(user=user, payload={**load_export("echo"), "endpoint_name": None, "name": "My Echo"})
    body = signed_in.get(reverse("flows:detail", args=[flow.pk])).content.decode()
    panel = mcp_panel(body)
    assert "<h3>MCP</h3>" in panel
    config = json.loads(html.unescape(re.search(r"<code[^>]*>(.*?)</code>", panel.split("<pre>")[1], re.S).group(1)))
    assert config == {"mcpServers": {"langflow": {"type": "http", "url": "http://testserver/api/v1/mcp/",
                                                  "headers": {"x-api-key": "${LANGFLOW_API_KEY}"}}}}
    assert "the tool <code>my_echo</code>" in panel
    assert raw not in body


def test_the_tab_names_the_tool_by_its_endpoint_name(signed_in, user):
    [flow] = import_flows(user=user, payload={**load_export("echo"), "endpoint_name": "support-bot"})
    body = signed_in.get(reverse("flows:detail", args=[flow.pk])).content.decode()
    assert "the tool <code>support-bot</code>" in mcp_panel(body)
