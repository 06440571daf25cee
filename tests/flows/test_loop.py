"""Loop (flows.engine.loops and components.loop): the body after a Loop's item output runs once
per item, what it feeds back is gathered into the Loop's done output; the graph's one allowed
cycle, bounded by FLOW_MAX_ITERATIONS and the run's time budget."""

import asyncio
import copy
import json

import pytest

from flows import services
from flows.engine import FlowError, InvalidGraph, RunRequest, check_plan, compile_graph, execute, plan_run, run_to_end
from tests.flows.graphs import edge, flow_data, node
from tests.flows.starter_support import starter_export

LOOP = "LoopComponent-1"
ROWS = [{"title": "Alpha", "summary": "first"}, {"title": "Beta", "summary": "second"},
        {"title": "Gamma", "summary": "third"}]


def back_edge(source: str, output: str, loop: str = LOOP, name: str = "item") -> dict:
    """Langflow's edge back into a Loop: the target handle names the loop's output, no field."""
    return {"source": source, "target": loop,
            "data": {"sourceHandle": {"id": source, "name": output},
                     "targetHandle": {"dataType": "LoopComponent", "id": loop, "name": name,
                                      "output_types": ["Data", "Message"]}}}


def loop_flow(rows=ROWS, pattern="{title}: {summary}", *extra):
    """Loop over ``rows``; its body is a Parser whose text comes back; done goes to the Chat Output."""
    return flow_data(
        node(LOOP, "LoopComponent", "Loop", data=rows),
        node("Parser-1", "ParserComponent", "Parser", input_data="", mode="Parser", pattern=pattern, sep="\n"),
        node("ChatOutput-1", "ChatOutput", "Chat Output", input_value="", data_template="<{text}>"),
        edge(LOOP, "item", "Parser-1", "input_data"),
        back_edge("Parser-1", "parsed_text"),
        edge(LOOP, "done", "ChatOutput-1", "input_value"),
        *extra,
    )


def run(data, **request):
    plan = plan_run(compile_graph(data), RunRequest(**request), flow_id="flow-1")

    async def both():
        await check_plan(plan)
        return await run_to_end(plan)

    return asyncio.run(both())


def answer(data, **request) -> str:
    return run(data, **request).outputs[0].value.text


def refusal(data, **request) -> FlowError:
    with pytest.raises(FlowError) as caught:
        run(data, **request)
    return caught.value


# --- Iterating ---------------------------------------------------------------------------------

def test_the_body_runs_once_per_item_and_done_gathers_what_it_fed_back():
    assert answer(loop_flow()) == "<Alpha: first>\n<Beta: second>\n<Gamma: third>"


def test_done_is_a_dataframe_of_one_row_per_item():
    data = flow_data(
        node(LOOP, "LoopComponent", "Loop", data=ROWS[:2]),
        node("Parser-1", "ParserComponent", "Parser", input_data="", mode="Parser", pattern="{title}", sep="\n"),
        node("Parser-2", "ParserComponent", "Rows", input_data="", mode="Stringify", pattern="", sep="\n"),
        edge(LOOP, "item", "Parser-1", "input_data"),
        back_edge("Parser-1", "parsed_text"),
        edge(LOOP, "done", "Parser-2", "input_data"),
    )
    text = run(data, output_component="Parser-2").outputs[0].value.text
    assert [json.loads(line) for line in text.splitlines()] == [
        {"text": "Alpha", "sender": "Machine", "sender_name": "AI"},
        {"text": "Beta", "sender": "Machine", "sender_name": "AI"}]


def test_no_items_make_an_empty_done_and_run_no_body():
    assert answer(loop_flow(rows=[])) == ""


def test_a_message_or_a_record_is_one_item():
    assert answer(loop_flow(rows={"title": "Solo", "summary": "only"})) == "<Solo: only>"
    assert answer(loop_flow(rows="plain text", pattern="[{text}]")) == "<[plain text]>"


def test_without_an_edge_back_done_holds_the_items():
    data = flow_data(
        node(LOOP, "LoopComponent", "Loop", data=ROWS),
        node("Parser-1", "ParserComponent", "Parser", input_data="", mode="Parser", pattern="{title}", sep="\n"),
        node("ChatOutput-1", "ChatOutput", "Chat Output", input_value="", data_template="{title}"),
        edge(LOOP, "item", "Parser-1", "input_data"),
        edge(LOOP, "done", "ChatOutput-1", "input_value"),
    )
    assert answer(data) == "Alpha\nBeta\nGamma"


def test_the_body_may_read_nodes_outside_it_listed_after_the_loop():
    """A node the body reads must have run before the loop starts, wherever the export lists it."""
    data = flow_data(
        node(LOOP, "LoopComponent", "Loop", data=ROWS),
        node("Prompt-1", "Prompt", "Prompt", template="{item} / {suffix}", use_double_brackets=False, item="", suffix=""),
        node("ChatOutput-1", "ChatOutput", "Chat Output", input_value="", data_template="{text}"),
        node("TextInput-1", "TextInput", "Suffix", input_value="tail"),
        edge(LOOP, "item", "Prompt-1", "item"),
        edge("TextInput-1", "text", "Prompt-1", "suffix"),
        back_edge("Prompt-1", "prompt"),
        edge(LOOP, "done", "ChatOutput-1", "input_value"),
    )
    text = answer(data)
    assert text.count("/ tail") == 3


def test_a_body_node_that_is_an_output_answers_once_per_item():
    data = loop_flow(ROWS, "{title}",
                     node("ChatOutput-2", "ChatOutput", "Each", input_value="", data_template="{text}"),
                     edge("Parser-1", "parsed_text", "ChatOutput-2", "input_value"))
    texts = [result.value.text for result in run(data).outputs if result.node.id == "ChatOutput-2"]
    assert texts == ["Alpha", "Beta", "Gamma"]


def test_streaming_reports_each_iteration():
    plan = plan_run(compile_graph(loop_flow()), RunRequest(stream=True), flow_id="f")

    async def events():
        return [item async for item in execute(plan)]

    ends = [data["build_data"]["id"] for name, data in asyncio.run(events()) if name == "end_vertex"]
    assert ends.count("Parser-1") == 3
    assert ends.count(LOOP) == 4  # each item, then done
    assert ends.index("ChatOutput-1") > max(i for i, node_id in enumerate(ends) if node_id == "Parser-1")


# --- Bounds ----------------------------------------------------------------------------------------

def test_more_items_than_flow_max_iterations_are_refused_before_the_first(settings):
    settings.FLOW_MAX_ITERATIONS = 2
    error = refusal(loop_flow())
    assert error.status_code == 422
    assert LOOP in str(error) and "FLOW_MAX_ITERATIONS (2)" in str(error)


def test_the_cap_holds_whatever_the_items(settings):
    settings.FLOW_MAX_ITERATIONS = 100
    rows = [{"title": str(i), "summary": ""} for i in range(100)]
    assert answer(loop_flow(rows, "{title}")).count("<") == 100
    error = refusal(loop_flow(rows + rows[:1], "{title}"))
    assert "FLOW_MAX_ITERATIONS (100)" in str(error)


def test_each_iteration_counts_against_the_runs_output_limit(settings):
    settings.FLOW_MAX_ANSWER_BYTES = 3000
    rows = [{"title": "x" * 400, "summary": ""} for _ in range(20)]
    error = refusal(loop_flow(rows, "{title}"))
    assert "FLOW_MAX_ANSWER_BYTES" in str(error)


def test_a_hanging_model_in_the_body_is_stopped_by_the_runs_time_budget(model_server, settings):
    model_server.mode = "hang"
    settings.FLOW_RUN_TIME_BUDGET = 0.5
    data = flow_data(
        node(LOOP, "LoopComponent", "Loop", data=ROWS),
        node("LanguageModelComponent-1", "LanguageModelComponent", "Language Model", input_value="", model="",
             system_message=""),
        node("ChatOutput-1", "ChatOutput", "Chat Output", input_value=""),
        edge(LOOP, "item", "LanguageModelComponent-1", "input_value"),
        back_edge("LanguageModelComponent-1", "text_output"),
        edge(LOOP, "done", "ChatOutput-1", "input_value"),
    )
    error = refusal(data)
    assert "FLOW_RUN_TIME_BUDGET" in str(error)
    assert len(model_server.requests) == 1


def test_the_loop_state_cannot_be_set_by_a_tweak():
    error = refusal(loop_flow(), tweaks={LOOP: {"__loop_state__": "x"}})
    assert "__loop_state__" in str(error)


# --- What cannot run -------------------------------------------------------------------------------

def test_an_edge_back_from_outside_the_body_is_refused():
    data = loop_flow(ROWS, "{title}", node("TextInput-1", "TextInput", "Other", input_value="x"),
                     back_edge("TextInput-1", "text"))
    with pytest.raises(InvalidGraph) as caught:
        compile_graph(data)
    assert LOOP in str(caught.value) and "TextInput-1" in str(caught.value)


def test_an_edge_back_into_anything_but_a_loop_is_refused():
    data = loop_flow(ROWS, "{title}", node("ChatOutput-2", "ChatOutput", "Out", input_value=""),
                     back_edge("Parser-1", "parsed_text", loop="ChatOutput-2", name="message"))
    with pytest.raises(InvalidGraph) as caught:
        compile_graph(data)
    assert "only into a Loop's item" in str(caught.value)


def test_nested_loops_are_refused():
    data = flow_data(
        node(LOOP, "LoopComponent", "Loop", data=ROWS),
        node("LoopComponent-2", "LoopComponent", "Inner", data=""),
        node("Parser-1", "ParserComponent", "Parser", input_data="", pattern="{text}"),
        edge(LOOP, "item", "LoopComponent-2", "data"),
        edge("LoopComponent-2", "item", "Parser-1", "input_data"),
        back_edge("Parser-1", "parsed_text", loop="LoopComponent-2"),
        back_edge("LoopComponent-2", "done"),
    )
    with pytest.raises(InvalidGraph) as caught:
        compile_graph(data)
    assert "nested loops" in str(caught.value)


def test_a_plain_cycle_through_a_loop_is_still_refused():
    data = loop_flow(ROWS, "{title}", edge("Parser-1", "parsed_text", LOOP, "data"))
    with pytest.raises(InvalidGraph) as caught:
        compile_graph(data)
    assert "cycle" in str(caught.value)


# --- The starter ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_research_translation_loop_translates_each_paper(api_client, user, key, model_server):
    """The starter as exported, its arXiv search left out and rows given to the Loop's input by a
    tweak instead: the model is called once per paper with the Parser's text."""
    export = copy.deepcopy(starter_export("Research Translation Loop.json"))
    data = export["data"]
    [arxiv] = [n["id"] for n in data["nodes"] if n["data"].get("type") == "ArXivComponent"]
    data["nodes"] = [n for n in data["nodes"] if n["id"] != arxiv]
    data["edges"] = [e for e in data["edges"] if arxiv not in (e["source"], e["target"])]
    [loop] = [n["id"] for n in data["nodes"] if n["data"].get("type") == "LoopComponent"]
    [flow] = services.import_flows(user=user, payload=export)
    papers = [{"title": "On Loops", "summary": "Loops loop."}, {"title": "On Graphs", "summary": "Graphs connect."}]
    response = api_client.post(f"/api/v1/run/{flow.pk}", {"input_value": "loops", "tweaks": {loop: {"data": papers}}},
                               format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 200, response.content
    sent = [request["json"]["messages"][-1]["content"] for request in model_server.requests]
    assert sent == ["Title: On Loops\nSummary: Loops loop.", "Title: On Graphs\nSummary: Graphs connect."]
    text = response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert text.count("Hello from the model") == 2


@pytest.mark.django_db
def test_the_starter_as_exported_imports_as_runnable_with_its_arxiv_search(user):
    """Its arXiv node is supported now: the starter is stored even when only runnable flows are
    (it runs end to end against an arXiv stand-in in test_starters.py)."""
    [flow] = services.import_flows(user=user, payload=starter_export("Research Translation Loop.json"),
                                   runnable_only=True)
    assert services.run_problem(flow) is None
