"""The Agent: its tool-calling loop against a scripted OpenAI-compatible server on loopback."""

import asyncio
import copy
import dataclasses
import json

import pytest

from flows import engine, services
from flows.engine.messages import Message
from tests.flows.conftest import load_fixture
from tests.flows.scripted_model import ScriptedModelServer, calls, final

pytestmark = pytest.mark.django_db

MULTI_AGENT = "starters/Multi Agent Flow.json"
TRAVEL = "starters/Travel Planning Agents.json"


@pytest.fixture
def scripted(settings):
    with ScriptedModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        yield server


def starter_node(name: str, node_id: str) -> dict:
    data = load_fixture(name)["data"]
    return copy.deepcopy(next(node for node in data["nodes"] if node["id"] == node_id))


def edge(source: str, output: str, target: str, field: str) -> dict:
    return {"source": source, "target": target,
            "data": {"sourceHandle": {"id": source, "name": output}, "targetHandle": {"id": target, "fieldName": field}}}


def agent_node(node_id="Agent-1", **values) -> dict:
    node = starter_node(MULTI_AGENT, "Agent-maf-1")
    node["id"] = node["data"]["id"] = node_id
    template = node["data"]["node"]["template"]
    template["system_prompt"]["value"] = "You are helpful."
    for name, value in values.items():
        template.setdefault(name, {"type": "str"})["value"] = value
    return node


def as_tool(node: dict) -> dict:
    """The node in tool mode, as Langflow exports it."""
    node["data"]["node"]["tool_mode"] = True
    node["data"]["node"]["outputs"] = [{"name": "component_as_tool", "method": "to_toolkit", "types": ["Tool"]}]
    return node


def calculator_node() -> dict:
    return starter_node(TRAVEL, "CalculatorComponent-OmYXB")


def flow_with(*nodes, tool_edges=(), agent_id="Agent-1") -> dict:
    chat_input = starter_node(MULTI_AGENT, "ChatInput-pNKvO")
    chat_output = starter_node(MULTI_AGENT, "ChatOutput-WSW39")
    edges = [edge("ChatInput-pNKvO", "message", agent_id, "input_value"),
             edge(agent_id, "response", "ChatOutput-WSW39", "input_value"), *tool_edges]
    return {"name": "Agent test", "data": {"nodes": [chat_input, *nodes, chat_output], "edges": edges}}


def imported(user, payload):
    [flow] = services.import_flows(user=user, payload=payload)
    return flow


def run(api_client, flow, key, body=None, query=""):
    return api_client.post(f"/api/v1/run/{flow.pk}{query}", body or {"input_value": "hi"}, format="json",
                           HTTP_X_API_KEY=key)


def answer(response) -> str:
    assert response.status_code == 200, response.content
    return response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


def events_of(response) -> list[dict]:
    raw = b"".join(response).decode()
    return [json.loads(block) for block in raw.split("\n\n") if block.strip()]


@pytest.fixture
def calculator_flow(user):
    return imported(user, flow_with(agent_node(), calculator_node(),
                                    tool_edges=[edge("CalculatorComponent-OmYXB", "component_as_tool", "Agent-1", "tools")]))


def tool_messages(body: dict) -> list[dict]:
    return [message for message in body["messages"] if message["role"] == "tool"]


# --- The loop ----------------------------------------------------------------------------------

def test_the_agent_calls_a_tool_and_answers_with_its_result(api_client, key, calculator_flow, scripted):
    scripted.script = [calls(("evaluate_expression", {"expression": "2+3*4"})), final("It is 14.")]
    assert answer(run(api_client, calculator_flow, key, {"input_value": "What is 2+3*4?"})) == "It is 14."
    first, second = scripted.requests
    [tool] = first["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "evaluate_expression"
    assert tool["function"]["description"] == "Perform basic arithmetic operations on a given expression."
    assert tool["function"]["parameters"]["properties"]["expression"]["type"] == "string"
    assert first["messages"] == [{"role": "system", "content": "You are helpful."},
                                 {"role": "user", "content": "What is 2+3*4?"}]
    assistant = second["messages"][2]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["function"] == {"name": "evaluate_expression",
                                                      "arguments": '{"expression": "2+3*4"}'}
    assert tool_messages(second) == [{"role": "tool", "tool_call_id": "call_0", "content": '{"result": "14"}'}]


def test_two_tool_calls_in_one_answer_each_get_their_result(api_client, user, key, scripted):
    flow = imported(user, flow_with(agent_node(add_current_date_tool=True), calculator_node(),
                                    tool_edges=[edge("CalculatorComponent-OmYXB", "component_as_tool", "Agent-1",
                                                     "tools")]))
    scripted.script = [
        {"tool_calls": [{"id": "a", "name": "evaluate_expression", "arguments": {"expression": "10/4"}},
                        {"id": "b", "name": "get_current_date", "arguments": {"timezone": "Europe/Paris"}}]},
        final("done"),
    ]
    assert answer(run(api_client, flow, key)) == "done"
    names = [tool["function"]["name"] for tool in scripted.requests[0]["tools"]]
    assert names == ["evaluate_expression", "get_current_date"]
    first, second = tool_messages(scripted.requests[1])
    assert (first["tool_call_id"], first["content"]) == ("a", '{"result": "2.5"}')
    assert second["tool_call_id"] == "b" and second["content"].startswith("Current date and time in Europe/Paris: 20")


def test_the_agent_stops_after_max_iterations(api_client, user, key, scripted):
    flow = imported(user, flow_with(agent_node(max_iterations=3, add_calculator_tool=True)))
    scripted.responder = lambda body: calls(("evaluate_expression", {"expression": "1+1"}))
    assert answer(run(api_client, flow, key)) == "Agent stopped due to max iterations."
    assert len(scripted.requests) == 3
    assert len(tool_messages(scripted.requests[-1])) == 2  # the third call's tools ran, unseen


@pytest.mark.parametrize(("call", "reported"), [
    (("evaluate_expression", {"expression": "9**9**9"}), "too large"),
    (("evaluate_expression", {"expression": "__import__('os').system('id')"}), "only numbers"),
    (("evaluate_expression", {"expression": "1+" * 600 + "1"}), "longer than 1000 characters"),
    (("evaluate_expression", '{"expression": '), "not valid JSON"),
    (("evaluate_expression", {"expr": "1"}), "unknown argument(s) 'expr'"),
    (("evaluate_expression", {"expression": ["1", "2"]}), "must be a string"),
    (("rm_rf", {}), "no tool named 'rm_rf'; the tools are: evaluate_expression"),
])
def test_a_failing_tool_call_is_told_to_the_model_and_the_run_goes_on(api_client, key, calculator_flow, scripted,
                                                                       call, reported):
    scripted.script = [calls(call), final("Sorry, I could not compute that.")]
    assert answer(run(api_client, calculator_flow, key)) == "Sorry, I could not compute that."
    [message] = tool_messages(scripted.requests[1])
    assert message["content"].startswith("Error: ")
    assert reported in message["content"]


def test_an_agent_can_be_the_tool_of_another_agent(api_client, user, key, scripted):
    inner = as_tool(agent_node("Agent-inner", system_prompt="You are the researcher."))
    flow = imported(user, flow_with(agent_node(), inner,
                                    tool_edges=[edge("Agent-inner", "component_as_tool", "Agent-1", "tools")]))

    def respond(body):
        if body["messages"][0]["content"] == "You are the researcher.":
            assert "tools" not in body  # its own built-in tools are off
            return final(f"research on {body['messages'][-1]['content']}")
        if not tool_messages(body):
            return calls(("Call_Agent_message_response", {"input_value": "electric cars"}))
        return final("Summary: " + tool_messages(body)[0]["content"])

    scripted.responder = respond
    assert answer(run(api_client, flow, key)) == "Summary: research on electric cars"
    [tool] = scripted.requests[0]["tools"]
    assert tool["function"]["parameters"]["properties"]["input_value"]["type"] == "string"
    assert len(scripted.requests) == 3


def test_a_streamed_run_sends_the_tool_steps_as_events_and_the_answer_as_tokens(api_client, key, calculator_flow,
                                                                                  scripted):
    scripted.script = [calls(("evaluate_expression", {"expression": "6*7"})), final("The answer is 42.")]
    response = run(api_client, calculator_flow, key, query="?stream=true")
    assert response.status_code == 200
    events = events_of(response)
    names = [event["event"] for event in events]
    assert scripted.requests[0]["stream"] is True
    step = names.index("tool_call")
    assert names[step + 1] == "tool_result"
    call, result = events[step]["data"], events[step + 1]["data"]
    assert call["name"] == "evaluate_expression" and json.loads(call["arguments"]) == {"expression": "6*7"}
    assert call["node_id"] == "Agent-1" and call["tool_call_id"] == result["tool_call_id"]
    assert result["output"] == '{"result": "42"}' and result["error"] is False
    tokens = [event["data"]["chunk"] for event in events if event["event"] == "token"]
    assert "".join(tokens) == "The answer is 42." and len(tokens) > 1
    assert names.index("token") > step
    assert {event["data"]["id"] for event in events if event["event"] in ("token", "tool_call")} == {call["id"]}
    assert events[-1]["event"] == "end"
    assert events[-1]["data"]["result"]["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "The answer is 42."


def test_the_system_prompts_placeholders_are_filled(api_client, user, key, scripted):
    flow = imported(user, flow_with(agent_node(system_prompt="Today: {current_date}. Model: {model_name}.{optional_user_context} {other}")))
    scripted.script = [final("ok")]
    answer(run(api_client, flow, key))
    system = scripted.requests[0]["messages"][0]["content"]
    assert system.startswith("Today: 20") and system.endswith("UTC. Model: test-model. {other}")


def test_the_actions_table_renames_and_disables_tools(api_client, user, key, scripted):
    calculator = calculator_node()
    [row] = calculator["data"]["node"]["template"]["tools_metadata"]["value"]
    row.update(name="add up", description="Adds numbers.")
    flow = imported(user, flow_with(agent_node(), calculator,
                                    tool_edges=[edge("CalculatorComponent-OmYXB", "component_as_tool", "Agent-1", "tools")]))
    scripted.script = [calls(("add-up", {"expression": "1+2"})), final("3")]
    assert answer(run(api_client, flow, key)) == "3"
    [tool] = scripted.requests[0]["tools"]
    assert tool["function"]["name"] == "add-up" and tool["function"]["description"] == "Adds numbers."
    assert tool_messages(scripted.requests[1])[0]["content"] == '{"result": "3"}'

    row["status"] = False
    flow = imported(user, flow_with(agent_node(), calculator,
                                    tool_edges=[edge("CalculatorComponent-OmYXB", "component_as_tool", "Agent-1", "tools")]))
    scripted.script = [final("no tools")]
    assert answer(run(api_client, flow, key)) == "no tools"
    assert "tools" not in scripted.requests[-1]


def test_the_tool_nodes_stored_fields_stand_when_the_model_leaves_them_out(api_client, user, key, scripted):
    calculator = calculator_node()
    calculator["data"]["node"]["template"]["expression"]["value"] = "100-1"
    flow = imported(user, flow_with(agent_node(), calculator,
                                    tool_edges=[edge("CalculatorComponent-OmYXB", "component_as_tool", "Agent-1", "tools")]))
    scripted.script = [calls(("evaluate_expression", {})), final("99")]
    assert answer(run(api_client, flow, key)) == "99"
    assert tool_messages(scripted.requests[1])[0]["content"] == '{"result": "99"}'


def test_a_tool_with_an_empty_stored_field_does_not_fail_the_run_before_it_starts(api_client, calculator_flow, key,
                                                                                  scripted):
    """The stored expression is empty: only a call can fill it; the run is not refused for it."""
    scripted.script = [final("nothing to compute")]
    assert answer(run(api_client, calculator_flow, key)) == "nothing to compute"


def test_a_tool_edge_must_feed_an_agents_tools(user):
    payload = flow_with(agent_node(), calculator_node(),
                        tool_edges=[edge("CalculatorComponent-OmYXB", "component_as_tool", "Agent-1", "system_prompt")])
    [flow] = services.import_flows(user=user, payload=payload)
    problem = services.run_problem(flow)
    assert "CalculatorComponent-OmYXB -> Agent-1" in problem and "'tools' input of an agent" in problem


def test_a_failing_model_is_a_502_naming_the_agent(api_client, user, key, settings):
    flow = imported(user, flow_with(agent_node()))
    response = run(api_client, flow, key)  # OPENAI_BASE_URL refuses connections
    assert response.status_code == 502
    assert "Agent-1" in response.json()["detail"]


def test_a_provider_other_than_openai_is_a_422(api_client, user, key, scripted):
    node = agent_node()
    node["data"]["node"]["template"]["model"]["value"] = [{"name": "gemini-3.5-flash", "provider": "Google Generative AI"}]
    response = run(api_client, imported(user, flow_with(node)), key)
    assert response.status_code == 422
    assert "Google Generative AI" in response.json()["detail"]
    assert scripted.requests == []


def test_the_structured_response_follows_the_output_schema(api_client, user, key, scripted):
    node = agent_node(output_schema=[{"name": "city", "description": "The city", "type": "str", "multiple": "False"},
                                     {"name": "days", "description": "", "type": "int", "multiple": "False"}])
    payload = flow_with(node)
    payload["data"]["edges"][1] = edge("Agent-1", "structured_response", "ChatOutput-WSW39", "input_value")
    payload["data"]["nodes"][-1]["data"]["node"]["template"]["data_template"]["value"] = "{city} for {days} days"
    flow = imported(user, payload)
    scripted.script = [final('```json\n{"objects": [{"city": "Lisbon", "days": 3.0, "extra": 1}]}\n```')]
    assert answer(run(api_client, flow, key)) == "Lisbon for 3 days"
    system = scripted.requests[0]["messages"][0]["content"]
    assert "- city (str): The city" in system and "- days (int)" in system

    scripted.script = [final('{"objects": [{"city": 7, "days": "three"}]}')]
    response = run(api_client, flow, key)
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert "Agent-1" in detail and "objects[0].city must be a string" in detail and "objects[0].days" in detail


# --- Chat history through RunContext.memory ----------------------------------------------------

class FakeMemory:
    def __init__(self, messages):
        self.messages = messages
        self.asked = []

    async def store(self, message):
        pass

    async def history(self, limit, *, sender=None, order="Ascending"):
        self.asked.append(limit)
        return self.messages[-limit:]

    async def search(self, query, limit, **kwargs):
        return []


def test_the_agent_reads_the_sessions_history_before_the_input(scripted):
    data = flow_with(agent_node(n_messages=2))["data"]
    plan = engine.plan_run(engine.compile_graph(data), engine.RunRequest(input_value="and now?"), flow_id="f")
    memory = FakeMemory([Message(text="old", sender="User"), Message(text="hello", sender="User"),
                         Message(text="hi there", sender="Machine")])
    plan.context = dataclasses.replace(plan.context, memory=memory)
    scripted.script = [final("ok")]
    result = asyncio.run(engine.run_to_end(plan))
    assert engine.run_response(result)["outputs"][0]["outputs"][0]["results"]["message"]["text"] == "ok"
    assert memory.asked == [2]
    assert scripted.requests[0]["messages"][1:] == [
        {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"},
        {"role": "user", "content": "and now?"}]


# --- Starter projects that need only the Agent --------------------------------------------------

def test_multi_agent_flow_chains_three_agents(api_client, user, key, scripted):
    flow = imported(user, load_fixture(MULTI_AGENT))
    scripted.responder = lambda body: final(f"step {len(scripted.requests)} after: {body['messages'][-1]['content'][:20]}")
    text = answer(run(api_client, flow, key, {"input_value": "AI tutors for kids"}))
    assert len(scripted.requests) == 3
    assert scripted.requests[0]["messages"][-1]["content"] == "AI tutors for kids"
    assert scripted.requests[1]["messages"][-1]["content"].startswith("step 1 after: AI tutors")
    assert text.startswith("step 3 after: step 2 after:")
    assert all("tools" not in body for body in scripted.requests)  # the export turns its built-in tools off
    assert all(body["messages"][0]["role"] == "system" and "{current_date}" not in body["messages"][0]["content"]
               for body in scripted.requests)


def test_twitter_thread_generator_runs_with_its_prompt_as_the_agents_instructions(api_client, user, key, scripted):
    flow = imported(user, load_fixture("starters/Twitter Thread Generator.json"))
    scripted.script = [final("1/ A thread")]
    assert answer(run(api_client, flow, key, {"input_value": "Launch day!"})) == "1/ A thread"
    system, user_message = scripted.requests[0]["messages"]
    assert system["content"].startswith("<Instructions Structure>")
    assert "Tech Company / AI Developer Platform" in system["content"]  # the prompt's variables, filled
    assert user_message == {"role": "user", "content": "Launch day!"}


def test_seo_keyword_generator_runs_from_its_prompt_with_the_builtin_tools(api_client, user, key, scripted):
    flow = imported(user, load_fixture("starters/SEO Keyword Generator.json"))
    scripted.script = [calls(("evaluate_expression", {"expression": "3*5"})), final("keywords: a, b")]
    assert answer(run(api_client, flow, key, {})) == "keywords: a, b"
    body = scripted.requests[0]
    assert {tool["function"]["name"] for tool in body["tools"]} == {"get_current_date", "evaluate_expression"}
    assert body["messages"][-1]["content"].startswith("Product:")
    assert tool_messages(scripted.requests[1])[0]["content"] == '{"result": "15"}'


# --- Bounds --------------------------------------------------------------------------------------

def inner_agent_flow(user):
    inner = as_tool(agent_node("Agent-inner", system_prompt="You are the researcher."))
    return imported(user, flow_with(agent_node(), inner,
                                    tool_edges=[edge("Agent-inner", "component_as_tool", "Agent-1", "tools")]))


def test_a_tool_that_outlasts_the_runs_time_budget_ends_the_run(api_client, user, key, scripted, settings):
    import time

    settings.FLOW_RUN_TIME_BUDGET = 1.0
    flow = inner_agent_flow(user)

    def respond(body):
        if body["messages"][0]["content"] == "You are the researcher.":
            time.sleep(2)  # the inner agent's model hangs past the run's budget
            return final("too late")
        return calls(("Call_Agent_message_response", {"input_value": "q"}))

    scripted.responder = respond
    started = time.monotonic()
    response = run(api_client, flow, key)
    assert response.status_code == 422
    assert "FLOW_RUN_TIME_BUDGET" in response.json()["detail"]
    assert time.monotonic() - started < 1.9
    assert len(scripted.requests) == 2  # the outer agent was not asked again


def test_a_tool_agents_failing_model_is_told_to_the_outer_model(api_client, user, key, scripted):
    flow = inner_agent_flow(user)

    def respond(body):
        if body["messages"][0]["content"] == "You are the researcher.":
            return {"status": 503}
        if not tool_messages(body):
            return calls(("Call_Agent_message_response", {"input_value": "q"}))
        return final("the researcher is away")

    scripted.responder = respond
    assert answer(run(api_client, flow, key)) == "the researcher is away"
    [message] = tool_messages(scripted.requests[2])
    assert message["content"] == ("Error: Model call failed in node Agent-inner: "
                                  "the model server answered HTTP 503")


def test_more_tool_calls_in_one_answer_than_the_cap_are_each_told_to_wait(api_client, key, calculator_flow, scripted):
    from flows.engine.components.agent import MAX_TOOL_CALLS_PER_TURN

    many = [("evaluate_expression", {"expression": f"{n}+1"}) for n in range(MAX_TOOL_CALLS_PER_TURN + 2)]
    scripted.script = [calls(*many), final("enough")]
    assert answer(run(api_client, calculator_flow, key)) == "enough"
    results = tool_messages(scripted.requests[1])
    assert len(results) == MAX_TOOL_CALLS_PER_TURN + 2
    assert results[0]["content"] == '{"result": "1"}'
    assert all("in one answer" in message["content"] for message in results[MAX_TOOL_CALLS_PER_TURN:])


def test_a_debug_run_lists_the_nodes_that_ran_but_not_the_tool_node(api_client, key, calculator_flow, scripted):
    scripted.script = [final("fine")]
    response = run(api_client, calculator_flow, key, {"input_value": "hi", "output_type": "debug"})
    assert response.status_code == 200
    outputs = response.json()["outputs"][0]["outputs"]
    assert len(outputs) == 3  # Chat Input, Agent, Chat Output; the calculator only waited to be called
    assert [output["component_id"] for output in outputs] == ["ChatInput-pNKvO", "Agent-1", "ChatOutput-WSW39"]
    assert outputs[1]["results"]["response"]["text"] == "fine"
