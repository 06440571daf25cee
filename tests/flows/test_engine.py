"""The engine alone: compiling graphs, tweaks, inputs and components (no HTTP, no database)."""

import asyncio

import pytest

from flows.engine import ComponentError, InvalidGraph, InvalidRunRequest, RunRequest, compile_graph, plan_run, run_to_end
from flows.engine.messages import format_data
from tests.flows.conftest import load_fixture
from tests.flows.graphs import chat_in, chat_out, edge, flow_data, node, prompt


def run(data, **request) -> dict[str, str]:
    """Run ``data``; return each output node's text."""
    plan = plan_run(compile_graph(data), RunRequest(**request), flow_id="flow-1")
    return {item.node.id: item.value.text for item in asyncio.run(run_to_end(plan)).outputs}


ECHO = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))


# --- Compiling --------------------------------------------------------------------------------

def test_nodes_run_in_dependency_order_whatever_their_order_in_the_file():
    data = flow_data(chat_out(), prompt(template="<{q}>"), chat_in(),
                     edge("Prompt-1", "prompt", "ChatOutput-1", "input_value"),
                     edge("ChatInput-1", "message", "Prompt-1", "q"))
    assert list(compile_graph(data).nodes) == ["ChatInput-1", "Prompt-1", "ChatOutput-1"]
    assert run(data, input_value="x") == {"ChatOutput-1": "<x>"}


def test_a_cycle_is_refused_naming_its_nodes():
    data = flow_data(chat_in(), prompt("P-1", "{a}", a=""), prompt("P-2", "{b}", b=""), chat_out(),
                     edge("P-1", "prompt", "P-2", "b"), edge("P-2", "prompt", "P-1", "a"),
                     edge("P-2", "prompt", "ChatOutput-1", "input_value"))
    with pytest.raises(InvalidGraph) as error:
        compile_graph(data)
    assert "cycle" in str(error.value)
    assert error.value.node_ids == ("P-1", "P-2")  # not the output merely downstream of it
    assert "P-1, P-2" in str(error.value)


def test_a_dangling_edge_is_refused_naming_the_missing_node():
    data = flow_data(chat_out(), edge("Ghost-1", "message", "ChatOutput-1", "input_value"))
    with pytest.raises(InvalidGraph) as error:
        compile_graph(data)
    assert "Ghost-1" in str(error.value) and error.value.node_ids == ("Ghost-1",)


def test_unsupported_components_are_all_named_with_their_node_ids():
    data = load_fixture("meeting_summary.json")["data"]
    data["nodes"].append(node("AstraDB-1", "AstraDB"))
    with pytest.raises(InvalidGraph) as error:
        compile_graph(data)
    message = str(error.value)
    for kind, node_id in [("AssemblyAITranscriber", "AAITranscriber-ms"), ("AstraDB", "AstraDB-1")]:
        assert f"{kind} (node {node_id})" in message
    assert set(error.value.node_ids) == {"AAITranscriber-ms", "AstraDB-1"}


def test_notes_are_comments_even_without_a_type():
    graph = compile_graph(load_fixture("basic_prompting.json")["data"])
    assert "undefined-Ua7t1" not in graph.nodes and "note-Px1sq" not in graph.nodes
    assert set(graph.nodes) == {"ChatInput-b6UCc", "Prompt-t2oaK", "LanguageModelComponent-FLeYF", "ChatOutput-yK0AU"}


def test_an_edge_into_a_code_field_is_refused():
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "code"))
    with pytest.raises(InvalidGraph, match="code"):
        compile_graph(data)


def test_the_code_field_is_never_a_parameter():
    graph = compile_graph(ECHO)
    assert all("code" not in node.params for node in graph.nodes.values())
    assert run(ECHO, input_value="still fine") == {"ChatOutput-1": "still fine"}


def test_a_value_loaded_from_a_global_variable_is_left_unset():
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))
    data["nodes"][0]["data"]["node"]["template"]["sender_name"]["load_from_db"] = True
    assert compile_graph(data).nodes["ChatInput-1"].params["sender_name"] is None


# --- Inputs, outputs and tweaks ---------------------------------------------------------------

def test_the_stored_input_is_used_when_the_request_brings_none():
    assert run(ECHO) == {"ChatOutput-1": "stored input"}
    assert run(ECHO, input_value="") == {"ChatOutput-1": "stored input"}


def test_input_type_text_does_not_feed_a_chat_input():
    assert run(ECHO, input_value="new", input_type="text") == {"ChatOutput-1": "stored input"}


def test_text_input_and_output_work_with_output_type_text():
    data = flow_data(node("TextInput-1", "TextInput", "Text Input", input_value=""),
                     node("TextOutput-1", "TextOutput", "Text Output", input_value=""),
                     edge("TextInput-1", "text", "TextOutput-1", "input_value"))
    assert run(data, input_value="plain", input_type="text", output_type="text") == {"TextOutput-1": "plain"}
    assert run(data, input_value="plain", input_type="text", output_type="chat") == {}


def test_output_component_picks_one_node_and_debug_reports_every_node():
    assert run(ECHO, input_value="a", output_component="ChatInput-1") == {"ChatInput-1": "a"}
    assert run(ECHO, input_value="a", output_type="debug") == {"ChatInput-1": "a", "ChatOutput-1": "a"}
    with pytest.raises(InvalidRunRequest, match="Nope"):
        run(ECHO, output_component="Nope")


def test_tweaks_by_node_id_by_display_name_and_by_field():
    by_id = run(ECHO, tweaks={"ChatInput-1": {"input_value": "by id"}})
    by_name = run(ECHO, tweaks={"Chat Input": {"input_value": "by name"}})
    by_field = run(ECHO, tweaks={"input_value": "everywhere"})
    assert (by_id, by_name, by_field) == ({"ChatOutput-1": "by id"}, {"ChatOutput-1": "by name"},
                                          {"ChatOutput-1": "everywhere"})


def test_an_edge_value_wins_over_a_field_wide_tweak():
    assert run(ECHO, input_value="from input", tweaks={"input_value": "tweak"}) == {"ChatOutput-1": "from input"}


@pytest.mark.parametrize(("tweaks", "expected"), [
    ({"Nope-1": {"x": 1}}, "'Nope-1' names no node"),
    ({"ChatInput-1": {"colour": "red"}}, "ChatInput-1 (ChatInput) has no field 'colour'"),
    ({"nonexistent_field": "x"}, "'nonexistent_field' names no node and no field"),
    ({"ChatInput-1": {"code": "import os"}}, "'code' field of node ChatInput-1"),
    ({"Chat Input": {"code": "import os"}}, "'code' field of node ChatInput-1"),
    ({"code": "import os"}, "cannot change components' 'code'"),
    ({"ChatInput-1": "not a dict"}, "must be an object"),
])
def test_a_tweak_that_names_nothing_or_targets_code_is_refused_saying_which(tweaks, expected):
    with pytest.raises(InvalidRunRequest) as error:
        run(ECHO, tweaks=tweaks)
    assert expected in str(error.value)


def test_older_inputs_feed_the_single_input_under_any_generic_key():
    for key in ("input_value", "text", "message"):
        assert run(ECHO, inputs={key: f"via {key}"}) == {"ChatOutput-1": f"via {key}"}


def test_older_inputs_can_name_an_input_by_id_or_display_name():
    data = flow_data(chat_in("In-A", "a"), chat_in("In-B", "b"), prompt(template="{x}+{y}"), chat_out(),
                     edge("In-A", "message", "Prompt-1", "x"), edge("In-B", "message", "Prompt-1", "y"),
                     edge("Prompt-1", "prompt", "ChatOutput-1", "input_value"))
    data["nodes"][1]["data"]["node"]["display_name"] = "Second"
    assert run(data, inputs={"In-A": "1", "Second": "2"}) == {"ChatOutput-1": "1+2"}
    with pytest.raises(InvalidRunRequest, match="ambiguous"):
        run(data, inputs={"text": "which one?"})


def test_older_inputs_fill_an_unconnected_prompt_variable():
    data = flow_data(chat_in(), prompt(template="{greeting}, {name}!", greeting="", name=""), chat_out(),
                     edge("ChatInput-1", "message", "Prompt-1", "name"),
                     edge("Prompt-1", "prompt", "ChatOutput-1", "input_value"))
    assert run(data, inputs={"greeting": "Hi", "text": "Ann"}) == {"ChatOutput-1": "Hi, Ann!"}
    with pytest.raises(InvalidRunRequest, match="'name' matches no input"):
        run(data, inputs={"name": "connected already"})


def test_an_input_that_is_not_text_is_refused():
    with pytest.raises(InvalidRunRequest, match="must be text"):
        run(ECHO, inputs={"text": {"nested": 1}})


# --- Components -------------------------------------------------------------------------------

def _prompt_flow(template: str, double: bool = False, **variables) -> dict:
    data = flow_data(prompt(template=template, **variables), chat_out(),
                     edge("Prompt-1", "prompt", "ChatOutput-1", "input_value"))
    data["nodes"][0]["data"]["node"]["template"]["use_double_brackets"]["value"] = double
    return data


def test_prompt_fills_single_bracket_variables_and_keeps_escaped_braces():
    data = _prompt_flow("{a} and { b } as {{json}}", a="1", b="2")
    assert run(data) == {"ChatOutput-1": "1 and 2 as {json}"}


def test_prompt_with_double_brackets_leaves_single_braces_alone():
    data = _prompt_flow('{{a}} in {"k": {b}}', double=True, a="1", b="2")
    assert run(data) == {"ChatOutput-1": '1 in {"k": {b}}'}


def test_prompt_variables_come_from_tweaks_even_when_the_template_is_tweaked():
    data = _prompt_flow("{a}", a="stored")
    assert run(data, tweaks={"Prompt-1": {"template": "{fresh}!", "fresh": "new"}}) == {"ChatOutput-1": "new!"}


def test_a_missing_prompt_variable_is_empty():
    assert run(_prompt_flow("[{unset}]")) == {"ChatOutput-1": "[]"}


def _parser_flow(pattern: str, mode: str = "Parser", kind: str = "ParserComponent") -> dict:
    fields = {"input_data": "", "pattern": pattern} if kind == "ParserComponent" else {"data": "", "template": pattern}
    output = "parsed_text" if kind == "ParserComponent" else "text"
    field = "input_data" if kind == "ParserComponent" else "data"
    return flow_data(chat_in(), node("Parser-1", kind, "Parser", mode=mode, sep="\n", **fields), chat_out(),
                     edge("ChatInput-1", "message", "Parser-1", field),
                     edge("Parser-1", output, "ChatOutput-1", "input_value"))


@pytest.mark.parametrize("kind", ["ParserComponent", "ParseData"])
def test_parser_renders_its_input_through_the_template(kind):
    assert run(_parser_flow("Said {sender}: {text}{missing}", kind=kind), input_value="hi") == {
        "ChatOutput-1": "Said User: hi"}


def test_parser_stringify_mode_ignores_the_template():
    assert run(_parser_flow("ignored {text}", mode="Stringify"), input_value="raw") == {"ChatOutput-1": "raw"}


@pytest.mark.parametrize("pattern", ["{text.__class__}", "{text[0]}", "{text:>99999999}", "{text!r}", "{"])
def test_parser_refuses_templates_that_reach_beyond_plain_names(pattern):
    with pytest.raises(ComponentError, match="Parser-1"):
        run(_parser_flow(pattern), input_value="hi")


def test_format_data_reads_langflow_data_objects():
    assert format_data("{a}-{b}", {"data": {"a": 1}, "text_key": "text"}) == "1-"


def test_chat_output_renders_data_through_its_template():
    data = flow_data(node("Parser-1", "ParserComponent", "Parser", input_data="", pattern="{text}", mode="Stringify"),
                     chat_out(), edge("Parser-1", "parsed_text", "ChatOutput-1", "input_value"))
    assert run(data, tweaks={"Parser-1": {"input_data": {"text": "x"}}}) == {"ChatOutput-1": '{"text": "x"}'}


def test_several_edges_into_one_field_arrive_as_a_list():
    data = flow_data(chat_in("In-A", "a"), chat_in("In-B", "b"), chat_out(),
                     edge("In-A", "message", "ChatOutput-1", "input_value"),
                     edge("In-B", "message", "ChatOutput-1", "input_value"))
    assert run(data) == {"ChatOutput-1": "a\nb"}


def test_a_node_that_feeds_nothing_still_runs_as_in_langflow_unless_one_output_is_asked_for():
    from flows.engine.components import REGISTRY, Component, register

    ran = []

    @register("RecordForTest")
    class Record(Component):
        outputs = {"text": "record"}

        def record(self):
            ran.append(self.text("input_value"))
            return self.message("recorded", sender="Machine", sender_name="AI")

    try:
        data = flow_data(chat_in(), chat_out(), node("Rec-1", "RecordForTest", input_value=""),
                         edge("ChatInput-1", "message", "ChatOutput-1", "input_value"),
                         edge("ChatInput-1", "message", "Rec-1", "input_value"))
        assert run(data, input_value="x") == {"ChatOutput-1": "x"}  # answers as before...
        assert ran == ["x"]  # ...and the node no output reads did its work (a Save File, say)
        # Asked for one output component, a run computes only what that one needs.
        assert run(data, input_value="y", output_component="ChatOutput-1") == {"ChatOutput-1": "y"}
        assert ran == ["x"]
    finally:
        del REGISTRY["RecordForTest"]


def test_a_component_is_one_small_registered_class():
    from flows.engine.components import REGISTRY, Component, register

    @register("UpperCaseForTest")
    class UpperCase(Component):
        outputs = {"text": "upper"}

        def upper(self):
            return self.message(self.text("input_value").upper(), sender="Machine", sender_name="AI")

    try:
        data = flow_data(chat_in(), node("Up-1", "UpperCaseForTest", input_value=""), chat_out(),
                         edge("ChatInput-1", "message", "Up-1", "input_value"),
                         edge("Up-1", "text", "ChatOutput-1", "input_value"))
        assert run(data, input_value="shout") == {"ChatOutput-1": "SHOUT"}
    finally:
        del REGISTRY["UpperCaseForTest"]


def test_an_empty_older_input_leaves_the_stored_or_tweaked_value():
    assert run(ECHO, inputs={"text": ""}) == {"ChatOutput-1": "stored input"}
    assert run(ECHO, inputs={"text": ""}, tweaks={"ChatInput-1": {"input_value": "tweak"}}) == {"ChatOutput-1": "tweak"}
