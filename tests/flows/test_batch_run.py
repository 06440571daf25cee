"""Batch Run (flows.engine.components.batch_run): one model call per row against the fake
OpenAI-compatible server on loopback (tests/flows/conftest.py), the answers in a new column."""

import asyncio

import pytest

from flows import services
from flows.engine import FlowError, RunRequest, check_plan, compile_graph, plan_run, run_to_end
from tests.flows.graphs import chat_in, edge, flow_data, node
from tests.flows.starter_support import starter_export

BATCH = "BatchRun-1"
ROWS = [{"title": "Rain", "summary": "It rained."}, {"title": "Sun", "summary": "It shone."},
        {"title": "Wind", "summary": "It blew."}]


def batch_node(**fields):
    values = {"model": "", "api_key": "", "system_message": "One sentence.", "df": "", "column_name": "summary",
              "output_column_name": "brief", "enable_metadata": False, **fields}
    return node(BATCH, "BatchRunComponent", "Batch Run", **values)


def run(data, **request):
    plan = plan_run(compile_graph(data), RunRequest(**request), flow_id="flow-1")

    async def both():
        await check_plan(plan)
        return await run_to_end(plan)

    return asyncio.run(both())


def batch(rows=ROWS, **fields) -> list[dict]:
    return run(flow_data(batch_node(df=rows, **fields)), output_component=BATCH).outputs[0].value


def refusal(rows=ROWS, **fields) -> FlowError:
    with pytest.raises(FlowError) as caught:
        batch(rows, **fields)
    return caught.value


def user_messages(server) -> list[str]:
    return sorted(request["json"]["messages"][-1]["content"] for request in server.requests)


def test_each_row_is_sent_with_the_system_message_and_answered_in_the_output_column(model_server):
    rows = batch()
    assert rows == [{**row, "brief": "Hello from the model"} for row in ROWS]
    assert user_messages(model_server) == ["It blew.", "It rained.", "It shone."]
    for request in model_server.requests:
        assert request["json"]["messages"][0] == {"role": "system", "content": "One sentence."}
        assert request["json"]["model"] == "test-model"
        assert request["headers"]["Authorization"] == "Bearer server-side-key"


def test_without_a_column_the_whole_row_is_sent_as_toml(model_server):
    batch([{"title": "Rain", "n": 3}], column_name="", system_message="")
    [request] = model_server.requests
    assert request["json"]["messages"] == [{"role": "user", "content": '["title"]\nvalue = "Rain"\n\n["n"]\nvalue = "3"\n'}]


def test_metadata_is_added_when_asked(model_server):
    [row] = batch(ROWS[:1], enable_metadata=True)
    assert row["metadata"] == {"has_system_message": True, "input_text": "It rained.", "response_processed": True}


def test_the_default_output_column_is_model_response(model_server):
    [row] = batch(ROWS[:1], output_column_name="")
    assert row["model_response"] == "Hello from the model"


def test_no_rows_make_no_calls(model_server):
    assert batch([]) == []
    assert model_server.requests == []


def test_a_missing_column_is_a_422_naming_the_field_before_any_call(model_server):
    error = refusal(column_name="body")
    assert error.status_code == 422 and BATCH in str(error) and "'column_name'" in str(error) and "'summary'" in str(error)
    assert model_server.requests == []


def test_more_rows_than_flow_max_iterations_are_refused_before_any_call(model_server, settings):
    settings.FLOW_MAX_ITERATIONS = 2
    error = refusal()
    assert error.status_code == 422 and BATCH in str(error) and "FLOW_MAX_ITERATIONS (2)" in str(error)
    assert model_server.requests == []


def test_a_failing_model_is_a_502_naming_the_node(model_server):
    model_server.mode = "500"
    error = refusal()
    assert error.status_code == 502 and BATCH in str(error) and "HTTP 500" in str(error)


def test_answers_count_against_the_value_limit(model_server, settings):
    model_server.reply = "x" * 5000
    settings.FLOW_MAX_VALUE_BYTES = 8000
    error = refusal()
    assert BATCH in str(error) and "FLOW_MAX_VALUE_BYTES" in str(error)


def test_a_hanging_model_is_stopped_by_the_runs_time_budget(model_server, settings):
    model_server.mode = "hang"
    settings.FLOW_RUN_TIME_BUDGET = 0.5
    error = refusal()
    assert "FLOW_RUN_TIME_BUDGET" in str(error)


def test_a_provider_other_than_openai_is_refused(model_server):
    error = refusal(model=[{"name": "gemini-3.5-flash", "provider": "Google Generative AI"}])
    assert BATCH in str(error) and "provider" in str(error)
    assert model_server.requests == []


def test_a_split_text_feeds_a_batch_run_whose_rows_a_parser_renders(model_server):
    data = flow_data(
        chat_in(value="first part. second part."),
        node("SplitText-1", "SplitText", "Split Text", chunk_size=12, chunk_overlap=0, separator=" ", text_key="text"),
        batch_node(column_name="text", output_column_name="brief"),
        node("Parser-1", "parser", "Parser", input_data="", mode="Parser", pattern="{text} -> {brief}", sep="\n"),
        node("ChatOutput-1", "ChatOutput", "Chat Output", input_value=""),
        edge("ChatInput-1", "message", "SplitText-1", "data_inputs"),
        edge("SplitText-1", "dataframe", BATCH, "df"),
        edge(BATCH, "batch_results", "Parser-1", "input_data"),
        edge("Parser-1", "parsed_text", "ChatOutput-1", "input_value"),
    )
    result = run(data)
    assert result.outputs[0].value.text == ("first part. -> Hello from the model\n"
                                            "second part. -> Hello from the model")
    assert user_messages(model_server) == ["first part.", "second part."]


@pytest.mark.django_db
def test_content_aggregators_batch_run_node_imports_and_runs(api_client, user, key, model_server):
    """The starter's own Batch Run node (its fields as exported), fed rows by a tweak."""
    export = starter_export("Content Aggregator.json")
    [starter] = [n for n in export["data"]["nodes"] if n["data"]["type"] == "BatchRunComponent"]
    data = {"nodes": [starter], "edges": []}
    [flow] = services.import_flows(user=user, payload={"name": "Batch", "data": data})
    rows = [{"title": "A", "summary": "Alpha happened.", "link": "https://a.example"}]
    response = api_client.post(f"/api/v1/run/{flow.pk}", {"output_type": "debug", "tweaks": {starter["id"]: {"df": rows}}},
                               format="json", HTTP_X_API_KEY=key)
    assert response.status_code == 200, response.content
    [request] = model_server.requests
    assert request["json"]["messages"][0]["content"].startswith("Write one concise, neutral sentence")
    assert request["json"]["messages"][1] == {"role": "user", "content": "Alpha happened."}
