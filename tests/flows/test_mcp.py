"""/api/v1/mcp/: a user's flows as MCP tools, spoken to by the official ``mcp`` client over Streamable HTTP."""

import asyncio
import json

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from apikeys.access import KeyAccess
from flows import mcp_tools, services
from flows.models import Message
from tests.flows.conftest import load_fixture

pytestmark = pytest.mark.django_db(transaction=True)

MCP = "/api/v1/mcp/"


def connect(live_server, headers, **kwargs) -> Client:
    http = httpx2.AsyncClient(headers=headers, timeout=20)
    return Client(streamable_http_client(f"{live_server.url}{MCP}", http_client=http), **kwargs)


def with_client(live_server, headers, work, **kwargs):
    async def session():
        async with connect(live_server, headers, **kwargs) as client:
            return await work(client)

    return asyncio.run(session())


def names(result) -> list[str]:
    return sorted(tool.name for tool in result.tools)


def import_flow(user, fixture="echo.json", **fields):
    [flow] = services.import_flows(user=user, payload={**load_fixture(fixture), "endpoint_name": None, **fields})
    return flow


# --- The official client: list and call --------------------------------------------------------

@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_mcp_client_lists_the_flows_as_tools_and_calls_one(live_server, key, user, mode):
    import_flow(user, endpoint_name="echo", description="Repeats what it is told.")
    import_flow(user, name="Basic Prompting", fixture="basic_prompting.json")

    async def work(client):
        listed = await client.list_tools()
        called = await client.call_tool("echo", {"input_value": "hello mcp"})
        return listed, called

    listed, called = with_client(live_server, {"x-api-key": key}, work, mode=mode)
    assert names(listed) == ["basic_prompting", "echo"]
    echo = next(tool for tool in listed.tools if tool.name == "echo")
    assert echo.description == "Repeats what it is told."
    assert echo.input_schema["properties"]["input_value"]["type"] == "string"
    assert set(echo.input_schema["properties"]) == {"input_value", "session_id"}
    assert not called.is_error
    assert [block.text for block in called.content] == ["hello mcp"]


def test_a_bearer_key_works_too(live_server, key, echo_flow):
    name = mcp_tools.tool_name(echo_flow)

    async def work(client):
        return await client.call_tool(name, {"input_value": "bearer"})

    called = with_client(live_server, {"Authorization": f"Bearer {key}"}, work)
    assert [block.text for block in called.content] == ["bearer"]


def test_a_tool_calls_model_flow_and_answers_its_text(live_server, key, prompting_flow, model_server):
    async def work(client):
        return await client.call_tool("basic_prompting", {"input_value": "hi"})

    called = with_client(live_server, {"x-api-key": key}, work)
    assert [block.text for block in called.content] == ["Hello from the model"]


def test_session_id_shares_the_flows_chat_memory(live_server, key, echo_flow):
    name = mcp_tools.tool_name(echo_flow)

    async def work(client):
        await client.call_tool(name, {"input_value": "one", "session_id": "chat-1"})
        await client.call_tool(name, {"input_value": "two", "session_id": "chat-1"})
        await client.call_tool(name, {"input_value": "alone"})

    with_client(live_server, {"x-api-key": key}, work)
    texts = list(Message.objects.filter(flow=echo_flow, session_id="chat-1").values_list("text", flat=True))
    assert texts == ["one", "one", "two", "two"]
    assert Message.objects.filter(flow=echo_flow, text="alone").exclude(session_id="chat-1").count() == 2


def test_a_failing_run_is_the_tools_error_answer(live_server, key, prompting_flow):  # no model listens
    async def work(client):
        return await client.call_tool("basic_prompting", {"input_value": "hi"})

    called = with_client(live_server, {"x-api-key": key}, work)
    assert called.is_error and "model server" in called.content[0].text.lower()


def test_bad_arguments_are_the_tools_error_answer_and_an_unknown_tool_a_protocol_error(live_server, key, echo_flow):
    name = mcp_tools.tool_name(echo_flow)

    async def work(client):
        bad = await client.call_tool(name, {"nope": "x"})
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("no_such_flow", {})
        return bad

    bad = with_client(live_server, {"x-api-key": key}, work)
    assert bad.is_error and "Unknown argument(s): nope" in bad.content[0].text


# --- The key's limits: scope, run permission, the owner's flows only ---------------------------

def test_a_key_limited_to_chosen_flows_lists_and_calls_only_those(live_server, user, make_key):
    mine = import_flow(user, endpoint_name="mine")
    import_flow(user, endpoint_name="hidden")
    _, raw = make_key(user, access=KeyAccess(all_flows=False, flow_ids=(str(mine.pk),), permissions=("run",)))

    async def work(client):
        listed = await client.list_tools()
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("hidden", {"input_value": "x"})
        return listed

    assert names(with_client(live_server, {"x-api-key": raw}, work)) == ["mine"]


def test_another_users_flows_are_not_tools(live_server, other_key, echo_flow):
    async def work(client):
        return await client.list_tools()

    assert names(with_client(live_server, {"x-api-key": other_key}, work)) == []


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "lfsk_wrong"}, {"Authorization": "Bearer nope"}])
def test_without_a_valid_key_the_door_is_closed(api_client, headers):
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = api_client.post(MCP, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, format="json",
                               HTTP_ACCEPT="application/json, text/event-stream", **extra)
    assert response.status_code == 403


def test_a_key_without_run_is_refused(api_client, user, make_key):
    _, raw = make_key(user, access=KeyAccess(permissions=("read", "write")))
    response = api_client.post(MCP, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, format="json",
                               HTTP_ACCEPT="application/json, text/event-stream", HTTP_X_API_KEY=raw)
    assert response.status_code == 403 and "'run' permission" in response.json()["detail"]


def test_each_mcp_request_counts_as_a_use_of_the_key(api_client, user, make_key, echo_flow):
    api_key, raw = make_key(user)
    for _ in range(2):
        response = api_client.post(MCP, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, format="json",
                                   HTTP_ACCEPT="application/json, text/event-stream", HTTP_X_API_KEY=raw)
        assert response.status_code == 200, response.content
    api_key.refresh_from_db()
    assert api_key.total_uses == 2


def test_the_credentials_are_not_handed_on_to_the_sdk(rf, key):
    from flows.mcp_api import PRINCIPAL, _scope

    request = rf.post(MCP, HTTP_X_API_KEY=key, HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT="application/json")
    scope = _scope(request, ("user", None, {}))
    assert key.encode() not in b"".join(name + value for name, value in scope["headers"])
    assert (b"accept", b"application/json") in scope["headers"] and scope[PRINCIPAL] == ("user", None, {})


# --- Names and input schemas -----------------------------------------------------------------

def test_tool_names_are_endpoint_names_else_slugs_and_stay_put_when_flows_are_added(user):
    first = import_flow(user, name="My Flow!")
    named = import_flow(user, name="Other", endpoint_name="my_flow")  # takes the slug as its endpoint name
    names_now = mcp_tools.tool_names(user, None)
    assert names_now["my_flow"] == named.pk
    assert names_now[f"my_flow_{first.pk.hex[:8]}"] == first.pk
    later = import_flow(user, name="my-flow")
    after = mcp_tools.tool_names(user, None)
    assert {name: flow for name, flow in after.items() if flow != later.pk} == names_now
    assert after[f"my_flow_{later.pk.hex[:8]}"] == later.pk
    assert mcp_tools.tool_name(first) == f"my_flow_{first.pk.hex[:8]}"


@pytest.mark.parametrize(("text", "slug"), [("Basic Prompting", "basic_prompting"), ("  Ünïcode & ❤ ", "n_code"),
                                              ("❤", ""), ("a" * 100, "a" * 64)])
def test_slugs(text, slug):
    assert mcp_tools.slug(text) == slug


def test_a_flow_with_several_inputs_takes_one_argument_each(user):
    data = load_fixture("echo.json")
    [chat] = [node for node in data["data"]["nodes"] if node["data"]["type"] == "ChatInput"]
    text_input = {"id": "TextInput-abc", "type": "genericNode", "position": {"x": 0, "y": 0},
                  "data": {"id": "TextInput-abc", "type": "TextInput",
                           "node": {"display_name": "Tone of voice", "template": {
                               "input_value": {"type": "str", "value": "plain"}}}}}
    data["data"]["nodes"].append(text_input)
    flow = import_flow(user, data=data["data"], name="Two inputs")
    graph = services.flow_graph(flow)
    assert {name: node.id for name, node in mcp_tools.tool_inputs(graph).items()} == {
        mcp_tools.slug(chat["data"]["node"]["display_name"]): chat["id"], "tone_of_voice": "TextInput-abc"}
    schema = mcp_tools.tool_definition("two_inputs", flow, graph)["input_schema"]
    assert schema["additionalProperties"] is False and "tone_of_voice" in schema["properties"]


def test_a_flow_that_cannot_run_here_is_not_listed(user):
    data = load_fixture("echo.json")["data"]
    data["nodes"][0]["data"]["type"] = "NoSuchComponent"
    import_flow(user, name="Unsupported", data=data)
    echo = import_flow(user)
    tools, cursor = mcp_tools.list_tools(user, None, None)
    assert [tool["name"] for tool in tools] == [mcp_tools.tool_name(echo)] and cursor is None


def test_tools_come_in_pages(user, monkeypatch):
    monkeypatch.setattr(mcp_tools, "PAGE_SIZE", 2)
    for number in range(5):
        import_flow(user, name=f"Flow {number}")
    seen, cursor, pages = [], None, 0
    while True:
        tools, cursor = mcp_tools.list_tools(user, None, cursor)
        seen += [tool["name"] for tool in tools]
        pages += 1
        if cursor is None:
            break
    assert pages == 3 and seen == [f"flow_{number}" for number in range(5)]


def test_the_sdks_plain_text_refusals_are_answered_as_json(api_client, key):
    response = api_client.post(MCP, b"{}", content_type="text/plain", HTTP_X_API_KEY=key,
                               HTTP_ACCEPT="application/json, text/event-stream")
    assert 400 <= response.status_code < 500 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["message"]


def test_a_body_past_the_limit_is_refused_before_the_sdk_reads_it(api_client, key, settings):
    settings.FLOW_MAX_BODY_BYTES = 100
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x" * 200}})
    response = api_client.post(MCP, body, content_type="application/json", HTTP_X_API_KEY=key,
                               HTTP_ACCEPT="application/json, text/event-stream")
    assert response.status_code == 413
